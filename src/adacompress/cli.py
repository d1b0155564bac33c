"""``adacompress`` command line: ``train`` and ``evaluate``.

Options are generated from the settings dataclasses (one docstring per field is the
help text), so a setting is declared once. ``main(argv) -> int`` is the one entry point
for ``python -m adacompress``, the console script and the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

from adacompress import settings_cli
from adacompress.agent import POLICIES, DQNSettings
from adacompress.backends import BACKENDS, ServiceError
from adacompress.codec import ACTION_SETS
from adacompress.evaluate import EvaluateSettings, best_fixed, evaluate
from adacompress.run import RunSettings, run
from adacompress.runtime import RuntimeSettings
from adacompress.scenery import ScenerySettings, scenery
from adacompress.service import ServeSettings, serve
from adacompress.threads import configure_threads
from adacompress.train import TrainSettings, train

# --backend has no fixed choices: URLs and ``rekognition`` are backends too (its
# help lists the registered names).
# --features neither: pirl:PATH is an extractor too.
CHOICES: dict[str, Iterable[str]] = {"actions": ACTION_SETS, "policy": POLICIES}
HIDDEN = {"state_dim", "n_actions", "dqn", "progress", "overrides", "action_cost"}


def add_settings(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    default_from: str | None = None,
) -> None:
    """This CLI's options for a settings dataclass (see :mod:`settings_cli`)."""
    settings_cli.add_settings(
        parser, cls, choices=CHOICES, hidden=HIDDEN, default_from=default_from,
        extra_help={
            "backend": f"; one of {', '.join(BACKENDS)}, rekognition, http(s)://URL",
        },
    )  # fmt: skip


def pick(cls: type, namespace: argparse.Namespace) -> dict[str, Any]:
    return settings_cli.pick(cls, namespace, hidden=HIDDEN)


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
    add_settings(group, DQNSettings)
    p_eval = sub.add_parser(
        "evaluate", help="agent vs every fixed quality vs the per-image oracle"
    )
    add_settings(p_eval, EvaluateSettings)
    p_run = sub.add_parser(
        "run", help="the deployed inference-estimate-retrain loop (resumable)"
    )
    add_settings(p_run, RunSettings)
    group = p_run.add_argument_group("runtime constants (override the preset)")
    add_settings(group, RuntimeSettings, default_from="--preset")
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
