"""Start-up (issue 20): small circuits are solved without Numba, heavy modules load only when needed, and
the kernels give the same answers interpreted as compiled. Timings are benchmarks/startup.py's business."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_kkt import random_qp

import resnet_sim as rs
from resnet_sim.solvers import kkt
from resnet_sim.solvers.active_set import solve_active_set
from resnet_sim.solvers.jit import Kernel, interpreted

NETLISTS = Path(__file__).resolve().parents[1] / "netlists"
HEAVY = ("numba", "scipy.sparse.linalg", "scipy.sparse.csgraph", "networkx", "cvxpy", "h5py", "matplotlib")

_LOADED = """
import io, contextlib, json, sys
from resnet_sim.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    main(["op", sys.argv[1], "--json"])
op = json.loads(out.getvalue())
print(json.dumps([op["method"], op["converged"], sorted(m for m in {heavy} if m in sys.modules)]))
"""


def loaded_after_solving(path) -> tuple[str, bool, list[str]]:
    """(method, converged, heavy modules imported) of ``resnet-sim op PATH`` in a fresh process."""
    out = subprocess.run([sys.executable, "-c", _LOADED.format(heavy=HEAVY), str(path)], capture_output=True,
                         text=True, check=True).stdout
    return tuple(json.loads(out))


@pytest.mark.parametrize("deck", ["divider.cir", "diode_clamp.cir", "bridge.cir", "ladder.cir"])
def test_small_netlists_load_no_heavy_module(deck):
    method, converged, heavy = loaded_after_solving(NETLISTS / deck)
    assert converged and method in ("active-set", "none") and heavy == []


def test_a_large_circuit_loads_numba_when_it_needs_it(tmp_path):
    path = tmp_path / "grid.cir"
    from benchmarks.families import grid_circuit

    path.write_text(rs.write_netlist(grid_circuit(50)))  # 2500 free variables, 500 diode rows: not small
    method, converged, heavy = loaded_after_solving(path)
    assert converged and "numba" in heavy


@pytest.mark.parametrize("seed", range(6))
def test_interpreted_kernels_give_the_compiled_answers(seed):
    rng = np.random.default_rng(seed)
    qp = random_qp(rng, int(rng.integers(5, 40)), int(rng.integers(1, 40)), B=2)
    compiled = solve_active_set(qp)
    with interpreted():
        plain = solve_active_set(qp)
        lam, res = kkt.certificate(qp, plain.x)
    assert np.array_equal(plain.x, compiled.x) and np.array_equal(plain.lam, compiled.lam)
    lam_c, res_c = kkt.certificate(qp, compiled.x)
    assert np.array_equal(lam, lam_c) and all(np.array_equal(res[k], res_c[k]) for k in res)


def test_kernels_run_as_python_inside_interpreted():
    def boom(*args):
        raise AssertionError("compiled kernel called")

    kernel = kkt._negative_cycle
    assert isinstance(kernel, Kernel)
    saved, kernel._compiled = kernel._compiled, boom  # a compiled call would fail
    try:
        with interpreted():
            assert len(kernel(1, np.array([0]), np.array([-1]), np.array([-1.0]), 0.0)) == 0  # x0 <= -1: feasible
        with pytest.raises(AssertionError, match="compiled"):
            kernel(1, np.array([0]), np.array([-1]), np.array([-1.0]), 0.0)
    finally:
        kernel._compiled = saved


def test_small_stages_take_the_active_set_under_auto():
    c = rs.read_netlist(NETLISTS / "divider.cir")
    assert rs.solve(c).method == "active-set"
    batch = np.ones((3000, 1))  # 3000 x (1 variable + 0 rows) > SMALL_WORK: compiled, cd where shallow
    c.inputs = ["v1"]
    assert rs.solve(c, inputs=batch).method == "cd"
