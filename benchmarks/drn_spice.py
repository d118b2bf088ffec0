"""A trained DRN-XS, written as a netlist, run in ngspice: does it classify MNIST test images as the fast path does?

    python benchmarks/drn_spice.py RUNDIR [--images 100] [--data ../shared/data]

RUNDIR is a `resnet-sim drn --arch xs` run (its checkpoint.h5). The trained DRN's circuit is simulated by
ngspice through the bridge (near-ideal diodes: IS = 1e-12 A, N = 1e-6; one ngspice process for all images,
`spice.simulate_batch`) on the first N MNIST test images, and compared with the fast path (float64) and the
general path. Reported: classification agreement, the largest output difference (volts) and ngspice's time.
Writes drn_spice.json and drn_spice.md under benchmarks/results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()

    import resnet_sim as rs
    from resnet_sim.data import load_dataset
    from resnet_sim.spice import simulate_batch
    from resnet_sim.train import checkpoint

    state = checkpoint.load(Path(args.run) / "checkpoint.h5")
    model = rs.models.drn("xs")
    model.set_theta(state["theta"].astype(np.float64))
    images, labels = load_dataset("mnist", "test", args.data)
    images, labels = images[:args.images].astype(np.float64), labels[:args.images]
    fast = model.outputs(model.free(images))
    circuit = model.circuit()
    sources = model.source_values(images)
    general = rs.solve(circuit, inputs=sources).outputs
    start = time.perf_counter()
    result = simulate_batch(circuit, sources, timeout=3600)
    spice_wall = time.perf_counter() - start
    out_ids = [circuit.node_id(n) for n in circuit.outputs]
    spice = result.potentials[0][out_ids].T
    record = {
        "command": "python benchmarks/drn_spice.py " + " ".join(sys.argv[1:]), "run": args.run,
        "images": len(images), "elements": sum(circuit.n_elements().values()),
        "same_class_fast_vs_spice": float(np.mean(np.argmax(fast, 1) == np.argmax(spice, 1))),
        "same_class_general_vs_spice": float(np.mean(np.argmax(general, 1) == np.argmax(spice, 1))),
        "max_output_difference_fast_spice_volts": float(np.abs(fast - spice).max()),
        "max_output_difference_fast_general_volts": float(np.abs(fast - general).max()),
        "output_scale_volts": float(np.abs(fast).max()),
        "test_error_fast": float(np.mean(np.argmax(fast, 1) != labels)),
        "spice_wall_seconds": spice_wall, "spice_stats": result.stats,
    }
    out = Path(args.out)
    (out / "drn_spice.json").write_text(json.dumps(record, indent=1) + "\n")
    text = "\n".join([
        "# A trained DRN-XS in ngspice", "", f"Command: `{record['command']}`", "",
        f"DRN-XS ({record['elements']} elements) trained by `resnet-sim drn --arch xs` ({args.run}), written as a netlist "
        f"and simulated by ngspice through the bridge (near-ideal diodes) on the first {len(images)} MNIST test images, "
        "in one ngspice process:", "",
        f"- same predicted class as the fast path: {record['same_class_fast_vs_spice']:.0%} of the images "
        f"(general path: {record['same_class_general_vs_spice']:.0%});",
        f"- largest output difference, fast path against ngspice: {record['max_output_difference_fast_spice_volts']:.2e} V "
        f"(outputs up to {record['output_scale_volts']:.2f} V); fast against general path: "
        f"{record['max_output_difference_fast_general_volts']:.2e} V;",
        f"- ngspice's wall time for the {len(images)} operating points: {spice_wall:.1f} s.", ""])
    (out / "drn_spice.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
