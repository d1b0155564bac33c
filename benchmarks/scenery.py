"""README table and plots: the scenery change (day -> night -> day) on every backend.

    python benchmarks/scenery.py [--backends lite0 lite1 lite2] [--presets ...]
        [--actions paper scale-quality]

Runs ``adacompress experiment scenery`` for each backend, runtime preset and action
set, starting from the shipped day-trained agent of that action set, and writes
out/scenery/<backend>-<preset>[-<actions>].json/.png, a summary JSON and a Markdown
table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from adacompress.scenery import ScenerySettings, scenery
from adacompress.storage import atomic_write, atomic_write_json
from adacompress.threads import configure_threads


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    parser.add_argument("--presets", nargs="+", default=["default", "paper"])
    parser.add_argument("--actions", nargs="+", default=["paper"])
    parser.add_argument("--out", default="out/scenery")
    args = parser.parse_args(argv)
    configure_threads()
    out = Path(args.out)
    rows = []
    lines = [
        "| backend | preset | actions | accuracy overall | day / night / day "
        "| agent acc day | night before -> after retrain | retrains (steps) "
        "| recovery steps | traffic ratio | estimates |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, preset, actions in (
        (b, p, a) for b in args.backends for a in args.actions for p in args.presets
    ):
        name = f"{backend}-{preset}" + ("" if actions == "paper" else f"-{actions}")
        report = scenery(ScenerySettings(
            backend=backend, preset=preset, actions=actions, progress=False,
            json=str(out / f"{name}.json"),
        ))  # fmt: skip
        report["actions_set"] = actions
        rows.append(report)
        acc, agent = report["accuracy"], report["agent_accuracy"]
        lines.append(
            f"| {backend} | {preset} | {actions} | {fmt(acc['overall'])} | "
            f"{fmt(acc['day_before'])} / {fmt(acc['night'])} / "
            f"{fmt(acc['day_after'])} | {fmt(agent['day_before'])} | "
            f"{fmt(agent['night_before_retrain'])} -> "
            f"{fmt(agent['night_after_retrain'])} | {report['retrains']} "
            f"({report['retrain_steps']}) | {fmt(report['recovery_steps'])} | "
            f"{fmt(report['traffic_ratio'])} | {report['estimates']} |"
        )
        print(lines[-1], flush=True)
    atomic_write_json(out / "scenery.json", rows)
    table = "\n".join(lines) + "\n"
    atomic_write(out / "scenery.md", lambda handle: handle.write(table.encode()))
    print(table)
    print(json.dumps({
        f"{r['backend']}/{r['preset']}/{r['actions_set']}": r["actions"] for r in rows
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
