"""Do the shipped agents choose the same on ONNX Runtime as on eager PyTorch?

    python benchmarks/engine_choices.py [--split test] [--threads 2]

Every exportable shipped agent (each backend's default and its paper-action agent;
the ``probes`` agents are left out: eager, their 27 forwards a photo would be most
of the run) on every photo of the split: the state on each engine (each state
computed once per engine and shared by the agents that use it), the largest
difference between the two
states, and how many photos get another action.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from _common import add_smoke, limit_splits
from adacompress.core.datasets import imagenet_split
from adacompress.core.engine import ENGINE_ENV
from adacompress.device.compressor import Compressor
from adacompress.device.zoo import ZOO
from basekit.images import load_image
from basekit.threads import configure_threads

ENGINES = ("onnx", "torch")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test")
    parser.add_argument("--threads", type=int, default=2)
    add_smoke(parser)
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    if args.smoke:
        limit_splits(2)
    paths = imagenet_split(args.split)
    agents: dict[str, dict[str, Compressor]] = {}
    for engine in ENGINES:
        os.environ[ENGINE_ENV] = engine
        for name in sorted(n for n in ZOO if ZOO[n].kind != "probes"):
            agent = Compressor.load(ZOO[name].file)
            agents.setdefault(name, {})[engine] = agent
    states: dict[tuple[str, str], np.ndarray] = {}
    for by_engine in agents.values():
        for engine, compressor in by_engine.items():
            key = (compressor.card.features, engine)
            if key not in states:
                rows = [compressor.features([load_image(p)])[0] for p in paths]
                states[key] = np.stack(rows)
    report = {}
    for name, by_engine in agents.items():
        state = by_engine["onnx"].card.features
        onnx, eager = states[(state, "onnx")], states[(state, "torch")]
        picks = {e: by_engine[e].choose(states[(state, e)]) for e in ENGINES}
        report[name] = {
            "photos": len(paths),
            "state": state,
            "max_state_difference": float(np.abs(onnx - eager).max()),
            "choices_differing": int((picks["onnx"] != picks["torch"]).sum()),
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
