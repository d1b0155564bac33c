"""README table: shipped agents and the paper's setting vs best fixed quality vs oracle.

    python benchmarks/evaluate_agents.py [--backends lite0 lite1 lite2] [--out DIR]

For each backend, on the 300 held-out test images: the shipped agent (``adacompress
ship``, the ``shipped`` training preset),
agents trained here on the train split with the paper's exact setting and with the
paper's setting but gamma = 0 (contextual bandit), every fixed quality and the
per-image oracle. Writes one JSON report and PNG per row, a summary
JSON and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from _common import SMOKE_OUT, add_smoke, limit_splits
from adacompress.device.zoo import AgentChoice, shipped
from adacompress.exchange.settings import CloudSettings
from adacompress.learning.evaluate import best_fixed, evaluate
from adacompress.learning.evaluation_plot import plot_evaluation
from adacompress.learning.presets import TRAIN_PRESETS
from adacompress.learning.settings import EvaluateSettings
from adacompress.learning.train import train
from basekit.atomic import atomic_write, atomic_write_json
from basekit.threads import configure_threads

TAGS = {"ours (shipped)": "ours", "paper": "paper", "paper, gamma=0": "bandit"}


def row(backend: str, setting: str, report: dict[str, Any]) -> dict[str, Any]:
    agent = report["agent"]
    fixed = best_fixed(report, agent["accuracy"])
    fixed_key, fixed_row = fixed if fixed else (None, None)
    return {
        "backend": backend,
        "setting": setting,
        "agent_size": agent["size_ratio"],
        "agent_accuracy": agent["accuracy"],
        "agent_strict": agent["strict_accuracy"],
        "best_fixed": fixed_key,
        "best_fixed_size": fixed_row["size_ratio"] if fixed_row else None,
        "best_fixed_accuracy": fixed_row["accuracy"] if fixed_row else None,
        "q75_strict": report["fixed"]["75"]["strict_accuracy"],
        "oracle_size": report["oracle"]["size_ratio"],
        "passes": bool(
            agent["accuracy"] >= 0.97
            and fixed_row is not None
            and agent["size_ratio"] < fixed_row["size_ratio"]
        ),
        "new_service_calls": report["service_calls"]["new"],
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | agent | agent size | agent acc (strict) "
        "| best fixed at >= agent acc "
        "| q=75 size | oracle size | beats fixed at >= 0.97 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fixed = (
            f"q={r['best_fixed']}: {r['best_fixed_size']:.3f} "
            f"({r['best_fixed_accuracy']:.3f})"
            if r["best_fixed"]
            else "none"
        )
        lines.append(
            f"| {r['backend']} | {r['setting']} | {r['agent_size']:.3f} | "
            f"{r['agent_accuracy']:.3f} ({r['agent_strict']:.3f}) | {fixed} | 1.000 | "
            f"{r['oracle_size']:.3f} | {'yes' if r['passes'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    parser.add_argument("--out", default="out/bench")
    add_smoke(parser)
    args = parser.parse_args(argv)
    configure_threads()
    if args.smoke:
        limit_splits()
        args.backends, args.out = args.backends[:1], SMOKE_OUT / "bench"
    out = Path(args.out)
    rows = []
    for backend in args.backends:
        agents = {"ours (shipped)": shipped(backend, "paper").file}
        for setting, gamma in (("paper", 0.95), ("paper, gamma=0", 0.0)):
            path = out / f"{backend}-{TAGS[setting]}.pt"
            overrides: dict[str, Any] = {
                "cloud": {"backend": backend},
                "agent": {"gamma": gamma},
            }
            if args.smoke:
                overrides["steps"] = 20
            paper = TRAIN_PRESETS.get("paper", overrides)
            train(replace(paper, out=str(path), progress=False))
            agents[setting] = path
        for setting, agent in agents.items():
            tag = TAGS[setting]
            report = evaluate(
                EvaluateSettings(
                    cloud=CloudSettings(backend),
                    choice=AgentChoice(str(agent)),
                    json=str(out / f"{backend}-{tag}.json"),
                    progress=False,
                )
            )
            plot_evaluation(report, out / f"{backend}-{tag}.png")
            rows.append(row(backend, setting, report))
            print(json.dumps(rows[-1]), flush=True)
    atomic_write_json(out / "agents.json", rows)
    table = markdown(rows)
    atomic_write(out / "agents.md", lambda handle: handle.write(table.encode()))
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
