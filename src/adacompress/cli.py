"""``adacompress`` command line: ``train`` and ``evaluate``.

Options are generated from the settings dataclasses (one docstring per field is the
help text), so a setting is declared once. ``main(argv) -> int`` is the one entry point
for ``python -m adacompress``, the console script and the tests.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import sys
import textwrap
import types
import typing
from functools import cache
from typing import Any

from adacompress.agent import DQNSettings
from adacompress.backends import BACKENDS, ServiceError
from adacompress.codec import ACTION_SETS
from adacompress.evaluate import EvaluateSettings, best_fixed, evaluate
from adacompress.features import EXTRACTORS
from adacompress.registry import Registry
from adacompress.run import RunSettings, run
from adacompress.runtime import RuntimeSettings
from adacompress.scenery import ScenerySettings, scenery
from adacompress.service import ServeSettings, serve
from adacompress.threads import configure_threads
from adacompress.train import TrainSettings, train

# --backend has no fixed choices: URLs and ``rekognition`` are backends too (its
# help lists the registered names).
CHOICES: dict[str, Registry[Any]] = {
    "actions": ACTION_SETS,
    "features": EXTRACTORS,
}
HIDDEN = {"state_dim", "n_actions", "dqn", "progress", "overrides"}


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The string literal under each field of a dataclass (its help text)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
        ):
            docs[node.target.id] = str(after.value.value)
    return docs


def add_settings(
    parser: argparse.ArgumentParser, cls: type, *, default_from: str | None = None
) -> None:
    """One ``--option`` per dataclass field, typed and documented from the class.

    With ``default_from`` every default is None ("take it from that option").
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        if f.name in HIDDEN:
            continue
        kind = hints[f.name]
        default: Any = f.default
        if default is dataclasses.MISSING:
            default = f.default_factory()  # type: ignore[misc]
        if default_from:
            default = None
        flag = "--" + f.name.replace("_", "-")
        shown = f"from {default_from}" if default_from else default
        help_text = f"{docs.get(f.name, '')} (default: {shown})"
        if kind is bool:
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=docs.get(f.name),
            )
            continue
        args = typing.get_args(kind)
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            kind = next(a for a in args if a is not type(None))
        if typing.get_origin(kind) is tuple:
            parser.add_argument(
                flag, type=int, nargs="+", default=default, help=help_text
            )
            continue
        choices = list(CHOICES[f.name]) if f.name in CHOICES else None
        if f.name == "backend":
            help_text += f"; one of {', '.join(BACKENDS)}, rekognition, http(s)://URL"
        parser.add_argument(
            flag, type=kind, default=default, choices=choices, help=help_text
        )


def pick(cls: type, namespace: argparse.Namespace) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)} - HIDDEN
    values = {name: getattr(namespace, name) for name in names}
    if "hidden" in values:
        values["hidden"] = tuple(values["hidden"])
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adacompress",
        description="Learn per-image JPEG quality for cloud vision services.",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: all cores)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train an agent against a backend")
    add_settings(p_train, TrainSettings)
    group = p_train.add_argument_group("agent (DQN) settings")
    add_settings(group, DQNSettings)  # type: ignore[arg-type]
    p_eval = sub.add_parser(
        "evaluate", help="agent vs every fixed quality vs the per-image oracle"
    )
    add_settings(p_eval, EvaluateSettings)
    p_run = sub.add_parser(
        "run", help="the deployed inference-estimate-retrain loop (resumable)"
    )
    add_settings(p_run, RunSettings)
    group = p_run.add_argument_group("runtime constants (override the preset)")
    add_settings(group, RuntimeSettings, default_from="--preset")  # type: ignore[arg-type]
    p_exp = sub.add_parser("experiment", help="experiments on the running system")
    experiments = p_exp.add_subparsers(dest="experiment", required=True)
    p_scenery = experiments.add_parser(
        "scenery", help="day -> night -> day: detection, retraining, recovery"
    )
    add_settings(p_scenery, ScenerySettings)
    p_serve = sub.add_parser(
        "serve", help="the emulated cloud as a Google Vision-shaped HTTP service"
    )
    add_settings(p_serve, ServeSettings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_threads(args.threads)
    progress = not args.quiet and sys.stderr.isatty()
    try:
        if args.command == "train":
            settings = TrainSettings(
                **pick(TrainSettings, args),
                progress=progress,
                dqn=DQNSettings(**pick(DQNSettings, args)),
            )
            log = train(settings)
            last = log["history"][-1] if log["history"] else {}
            print(
                f"trained on {log['n_images']} images, {settings.steps} steps: "
                f"reward {last.get('charts/reward', float('nan')):.3f}, "
                f"accuracy {last.get('charts/accuracy', float('nan')):.3f} "
                f"(last {100} steps) -> {log['agent_file']}"
            )
        elif args.command == "evaluate":
            report = evaluate(
                EvaluateSettings(**pick(EvaluateSettings, args), progress=progress)
            )
            print_report(report)
        elif args.command == "run":
            overrides = {
                key: value
                for key, value in pick(RuntimeSettings, args).items()
                if value is not None
            }
            summary = run(
                RunSettings(
                    **pick(RunSettings, args), progress=progress, overrides=overrides
                )
            )
            print_run(summary)
        elif args.command == "experiment":
            result = scenery(
                ScenerySettings(**pick(ScenerySettings, args), progress=progress)
            )
            print(json.dumps({k: v for k, v in result.items() if k != "problems"}))
        elif args.command == "serve":
            serve(ServeSettings(**pick(ServeSettings, args)))
    except (ValueError, ServiceError, OSError) as err:
        print(f"adacompress: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("adacompress: interrupted", file=sys.stderr)
        return 130
    return 0


def print_report(report: dict[str, Any]) -> None:
    """A short human summary of an evaluation report."""
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
    for item in report["skipped"]:
        print(f"  skipped {item['path']}: {item['error']}")


def print_run(summary: dict[str, Any]) -> None:
    """A short human summary of a run."""
    ratio = summary["traffic_ratio"]
    print(
        f"{summary['backend']}: {summary['images']} images "
        f"({', '.join(f'{n} {s}' for s, n in sorted(summary['states'].items()))}); "
        f"uploaded {summary['bytes_uploaded'] / 1e6:.2f} MB = "
        f"{'n/a' if ratio is None else f'{ratio:.3f}'} of always uploading q=75; "
        f"{summary['retrains']} retrains"
    )
    for problem in summary["problems"]:
        print(f"  {problem['state']} {problem['path']}: {problem['error']}")


def run_cli() -> None:
    """Console-script entry point."""
    raise SystemExit(main())


if __name__ == "__main__":
    run_cli()
