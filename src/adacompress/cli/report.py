"""Short human summaries of what a command did (the JSON has everything)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from adacompress.learning.evaluate import best_fixed
from basekit.extras import MissingExtra


def print_skipped(items: list[dict[str, str]]) -> None:
    """One line per skipped input, control characters escaped: a file name with a
    newline cannot forge a second line."""
    for item in items:
        print(f"  skipped {shown(item['path'])}: {shown(item['error'])}")


def shown(text: str) -> str:
    """``text`` with its control characters escaped (``\\n``, ``\\x1b``, ...)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def print_evaluation(report: dict[str, Any]) -> None:
    """Agent, the best fixed setting at its accuracy, q=75, the oracle, the calls."""
    if not report["n_images"]:
        print(json.dumps(report, indent=2))
        return
    agent, oracle = report["agent"], report["oracle"]
    fixed = best_fixed(report, agent["accuracy"])
    print(f"{report['backend']} on {report['n_images']} images ({report['split']}):")
    print(
        f"  agent     size {agent['size_ratio']:.3f}  accuracy {agent['accuracy']:.3f}"
    )
    if fixed:
        key, row = fixed
        print(
            f"  fixed q={key:<3} size {row['size_ratio']:.3f}  accuracy "
            f"{row['accuracy']:.3f}  (smallest fixed at >= agent accuracy)"
        )
    ref = report["fixed"].get("75")
    if ref:
        print(
            f"  fixed q=75  size {ref['size_ratio']:.3f}  "
            f"accuracy {ref['accuracy']:.3f}"
        )
    print(
        f"  oracle    size {oracle['size_ratio']:.3f}  "
        f"accuracy {oracle['accuracy']:.3f}"
    )
    calls = report["service_calls"]
    print(
        f"  service calls: {calls['new']} new, {calls['cached']} cached; "
        f"{len(report['skipped'])} skipped"
    )
    print_skipped(report["skipped"])


def print_run(summary: dict[str, Any]) -> None:
    """States, traffic against always uploading q=75, retrains, problems."""
    ratio = summary["traffic_ratio"]
    print(
        f"{summary['backend']}: {summary['images']} images "
        f"({', '.join(f'{n} {s}' for s, n in sorted(summary['states'].items()))}); "
        f"uploaded {summary['bytes_uploaded'] / 1e6:.2f} MB = "
        f"{'n/a' if ratio is None else f'{ratio:.3f}'} of always uploading q=75; "
        f"{summary['retrains']} retrains; {summary['calls']['new']} paid calls"
        + (
            f" ({summary['calls']['per_image']:.2f} an image)"
            if summary["calls"]["per_image"] is not None
            else ""
        )
    )
    if summary.get("certificate"):
        print(f"  {summary['certificate']['text']}")
    if summary.get("threshold"):
        control = summary["threshold"]
        print(
            f"  threshold {control['start']:.4f} -> {control['now']:.4f} after "
            f"{control['updates']} estimates"
            + (" and every answer's feedback" if control["answer_feedback"] else "")
            + f" (aiming at {control['aim']:.3f} lost)"
        )
    for problem in summary["problems"]:
        print(f"  {problem['state']} {problem['path']}: {problem['error']}")


def plot_or_note(draw: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Draw a figure that accompanies a result; without matplotlib, say so and go on
    (the JSON is the result)."""
    try:
        draw(*args, **kwargs)
    except MissingExtra as err:
        print(f"adacompress: no plot: {err}", file=sys.stderr)
