"""What the scenery's night could cost: each candidate's kept rate and bytes on the
night photos, and the oracle's (the cheapest candidate keeping each photo's answer).

    python benchmarks/research/night_oracle.py [--backends lite0 lite1 lite2]
        [--day train|DIR]

The night versions of the day photos (the scenery's own, :mod:`adacompress.night`;
default day: the held-out test images, as ``benchmarks/scenery.py``) are asked with
every candidate of the shipped scale-quality agent once (cached answers). Bytes are
against the reference upload. A fixed candidate or the oracle says how much of the
night's traffic is the agent's ranking, not the photos: the oracle needs to know each
answer beforehand, so it is a floor, not a target.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from adacompress.device.zoo import AgentChoice
from adacompress.exchange.settings import CloudSettings
from adacompress.learning.survey import Survey
from adacompress.runtime.run import open_agent_env
from basekit.threads import configure_threads

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from night_photos import add_day, night_photos  # noqa: E402

from _common import add_smoke, limit_splits  # noqa: E402  (benchmarks/_common.py)


def night_table(backend: str, night: list[Path]) -> list[str]:
    """Rows: each candidate's kept rate and bytes of the reference, then the oracle's
    (every answer kept) and at 0.99 (the 1% of photos it saves most on lost)."""
    with open_agent_env(CloudSettings(backend), AgentChoice(None, "scale-quality")) as (
        _,
        env,
    ):
        samples, _ = env.prepare(night, progress=False)
        survey = Survey.full(env, samples)
        keys = [a.key for a in env.actions]
    kept, sizes, reference = survey.kept, survey.sizes, survey.reference
    total = reference.sum()
    share = sizes.sum(axis=0) / total
    rows = [
        f"| {backend} | {key} | {kept[:, a].mean():.3f} | {share[a]:.3f} |"
        for a, key in enumerate(keys)
    ]
    best = np.minimum(np.where(kept >= 1, sizes, np.inf).min(axis=1), reference)
    cheapest = sizes.min(axis=1)
    lost = np.argsort(cheapest - best)[: int(0.01 * len(best))]
    at_99 = best.copy()
    at_99[lost] = cheapest[lost]
    rows.append(f"| {backend} | oracle | 1.000 | {best.sum() / total:.3f} |")
    rows.append(f"| {backend} | oracle at 0.99 | 0.990 | {at_99.sum() / total:.3f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    add_day(parser)
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        limit_splits()
        args.backends = args.backends[:1]
    configure_threads()
    night, unreadable = night_photos(args.day)
    print(f"{len(night)} night photos ({unreadable} day photos unreadable)")
    print("| backend | candidate | kept | bytes of the reference |")
    print("|---|---|---|---|")
    for backend in args.backends:
        print("\n".join(night_table(backend, night)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
