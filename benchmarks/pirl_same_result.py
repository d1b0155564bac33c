"""Does this tree's CIFAR-10 benchmark give the same numbers as another commit's? If
every score is equal on a short run, a table that commit made stands for this tree.

    python benchmarks/pirl_same_result.py --base 47ffe74 [--epochs 1]
        [--train-limit 4000] [--json out/bench/pirl_same_result.json]

Runs each tree's own ``benchmarks/pirl_cifar10.py`` (its sources on ``PYTHONPATH``,
this environment, a decoded-data cache of its own) with the same short settings
(PIRL, Jigsaw and NPID, one seed) and compares every method's kNN and linear top-1
(unrounded) and the self-supervised loss it ended on. Prints one line per method and
exits 1 if any differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import add_smoke
from base_tree import ROOT, checked_out

COMPARED = ("knn_top1", "linear_top1")


def run_tree(
    tree: Path, src: Path, work: Path, args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """One tree's benchmark on the short settings: per method, its run's scores."""
    out = work / tree.name
    command = [sys.executable, str(tree / "benchmarks" / "pirl_cifar10.py")]
    command += ["--epochs", str(args.epochs), "--seeds", "0", "--threads", "2"]
    command += ["--methods", args.methods]
    command += ["--train-limit", str(args.train_limit)]
    command += ["--eval-train-limit", str(args.train_limit)]
    command += ["--test-limit", str(args.test_limit), "--linear-epochs", "5"]
    command += ["--json", str(out / "result.json"), "--out-dir", str(out / "runs")]
    command += ["--cache-dir", str(out / "cache")]
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    found = {}
    for result in sorted((out / "runs").glob("*/seed0/result.json")):
        run = json.loads(result.read_text())
        found[result.parent.parent.name] = {
            **{key: run.get(key) for key in COMPARED},
            "last_loss": run.get("train", {}).get("last_loss"),
        }
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="commit to compare with (smoke: HEAD)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-limit", type=int, default=4000)
    parser.add_argument("--test-limit", type=int, default=1000)
    parser.add_argument("--methods", default="pirl,jigsaw,npid")
    parser.add_argument("--json", type=Path, default=None)
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.train_limit, args.test_limit, args.methods = 256, 128, "pirl"
        args.base = args.base or "HEAD"
    if args.base is None:
        parser.error("--base is required")
    with tempfile.TemporaryDirectory() as tmp, checked_out(args.base) as base_src:
        work = Path(tmp)
        here = run_tree(ROOT, ROOT / "src", work, args)
        there = run_tree(base_src.parent, base_src, work, args)
    same = True
    for method in sorted(set(here) | set(there)):
        equal = here.get(method) == there.get(method)
        same = same and equal
        print(
            f"{method}: {'same' if equal else 'differs'} (this tree "
            f"{here.get(method)}, {args.base} {there.get(method)})",
            flush=True,
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"this": here, args.base: there}, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
