"""A compiled ReLU network simulated by ngspice agrees with the network within the bridge's diode tolerance."""

import numpy as np
import pytest

import resnet_sim as rs
from resnet_sim.relu_compiler import compile_relu, forward

# ngspice's near-ideal diode (IS 1e-12 A, N 1e-6) drops ~5e-7 V when on; the gains G ~ 3 of the buffers
# (exact) or of the output stage (minimal) multiply that, and two layers add up: measured 1.3e-5 V (exact),
# 1.7e-5 V (minimal 3-6-5-2) and 4.6e-6 V (minimal 12-4-2) at most on these samples.
SPICE_TOL = 5e-5  # volts


@pytest.mark.ngspice
@pytest.mark.parametrize("mode,sizes", [("exact", [3, 6, 5, 2]), ("minimal", [3, 6, 5, 2]),
                                        ("minimal", [12, 4, 2])])  # the last one: split first layer
def test_compiled_network_in_ngspice(ngspice, mode, sizes):
    from resnet_sim import spice

    rng = np.random.default_rng(3)
    weights = [rng.normal(size=(n_out, n_in)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(size=n) for n in sizes[1:]]
    x = rng.normal(size=(6, sizes[0]))
    if mode == "exact":
        c = compile_relu(weights, biases)
        expected = forward(weights, biases, x)
    else:  # the minimal circuit only approximates the network: compare with its ideal operating point
        # (gain 100 keeps the last layer's conductances, 1e-7 S, far above ngspice's GMIN of 1e-12 S)
        c = compile_relu(weights, biases, "minimal", gain=100.0)
        expected = rs.solve(c, inputs=x).outputs
    rows = [c.element(name)[1] for name in c.inputs]
    for sample, y_ideal in zip(x, expected):
        values = c["V"].value.copy()
        values[rows] = sample
        c["V"].value = values
        result = spice.simulate(c, ngspice=ngspice)
        y = np.array([result.voltages[node] for node in c.outputs])
        np.testing.assert_allclose(y, y_ideal, rtol=0, atol=SPICE_TOL)
