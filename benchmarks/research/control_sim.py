"""Which threshold controller keeps the accuracy target on a shifted stream? Replayed
on the cloud's full answer tables, thousands of streams a minute.

    python benchmarks/research/control_sim.py [--backends lite0 lite1 lite2]
        [--streams test bsds500 dark ...] [--photos 1000] [--seeds 20]

For every photo of a stream and every candidate upload of the shipped default agent:
the agent's predicted survival, whether the cloud kept the reference's answer, and
the bytes (the cloud asked once per candidate; answers cached). A stream is the
photos in shuffled passes up to ``--photos``; each photo is an estimate with
probability ``--p-est`` (drawn before it is seen, as ``run`` does): the caller gets
the reference's answer, and the controller sees whether the agent's upload kept it
(and, for the ``recal`` controllers, whether the next ``--extra`` cheaper candidates
would have, one paid call each). Printed per backend, stream and controller: the
true kept rate over the photos answered from the agent's upload alone (the bar:
>= target - 0.005 on every stream), its worst stream, the uploads' bytes against
q=75 and the calls paid. Controllers:

- ``frozen``: the shipped threshold.
- ``aci``: ``run --threshold-control`` today: the threshold's logit moves by
  ``gamma * (err - alpha)`` after each estimate.
- ``recal``: a logistic recalibration of the agent's survival on the stream,
  ``P(kept) = sigmoid(a * logit(s) + b)``, fitted (MAP, prior at the offline
  calibration) on every candidate an estimate saw; the threshold is the lowest one
  whose predicted kept rate over the photos seen so far reaches the target plus
  ``--margin``.
- ``ladder``: ACI on what the agent would have sent 1 .. ``--extra`` steps of
  ``--step`` logits lower (one paid call each), steered to that rate on the training
  photos.
- ``feedback``: ``aci``, and after every answered upload the logit moves by
  ``--feedback-step * (m - m0)``: m a logistic model's probability that the upload
  lost the answer from the cloud's confidence in it (top-1 score, margin; fitted on
  the training photos' answers), m0 its mean at the shipped threshold there.
- ``offset``: ``feedback`` with the proxy's offset on this stream learned from the
  estimates, ``d = Σ (m − err − (m0 − alpha)) / (n + --offset-prior)``, subtracted
  from ``m − m0``.
- ``relative``: ``feedback`` with the offset learned from the cloud's confidence in
  the estimates' dearest candidate (the reference, nearly) against the training
  photos', ``d = Σ (m_ref − m_ref0) / (n + --offset-prior)``.
``--fallback dearest`` sends the dearest candidate when none is trusted. ``run``'s
controller is ``feedback`` with that fallback (and a rise that stops at the photo's
best candidate).

Choices are made on the train split's streams; test and shifted-test streams only
score.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from adacompress.core.datasets import imagenet_split, list_images
from adacompress.device.actions import REFERENCE_ACTION
from adacompress.device.answer_feedback import fit_weights
from adacompress.device.policies.survival import SurvivalPolicy, cheapest_trusted
from adacompress.device.zoo import AgentChoice
from adacompress.exchange.cache import default_cache_path
from adacompress.exchange.environment import open_agent_env
from adacompress.exchange.settings import CloudSettings
from adacompress.experiments.shifts import SHIFTS, make_shifted_folder
from adacompress.learning.evaluate import collect
from basekit.threads import configure_threads

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from _common import add_smoke, limit_splits, smoke_path  # noqa: E402

BSDS500_TEST = Path("../shared/data/bsds500/test")
TABLES = Path("out/control_sim")
TABLE_VERSION = 2
"""Part of a saved table's name: bump it when a table gains or changes a column."""


def stream_photos(stream: str) -> list[Path]:
    """A stream's distinct photos: a split, BSDS500 test, or ``SHIFT[-of-SOURCE]``
    (a shift of the test split, or of ``SOURCE``: ``dark-of-train``)."""
    if stream in ("train", "test"):
        return imagenet_split(stream)
    if stream == "bsds500":
        return list_images(BSDS500_TEST)
    shift, _, source = stream.partition("-of-")
    if shift not in SHIFTS:
        raise SystemExit(f"unknown stream {stream!r}")
    made, _ = make_shifted_folder(
        stream_photos(source or "test"), default_cache_path().parent / "shifts", shift
    )
    return made


def table(backend: str, stream: str, folder: Path) -> dict[str, np.ndarray]:
    """The stream's survival, kept and bytes per photo and candidate (saved once)."""
    path = folder / f"{backend}-{stream}-v{TABLE_VERSION}.npz"
    if path.exists():
        with np.load(path) as saved:
            return dict(saved)
    with open_agent_env(CloudSettings(backend), AgentChoice()) as (compressor, env):
        collected = collect(env, stream_photos(stream), progress=False)
        policy = compressor.learned
        if not isinstance(policy, SurvivalPolicy):
            raise SystemExit(f"{backend}'s default agent is not a survival agent")
        candidates = np.asarray(compressor.candidates)
        features = np.stack([s.features for s in collected.samples])
        survival = policy.survival(features)[:, candidates]
        cost = np.asarray(policy.cost(), dtype=np.float64)[candidates]
        chosen = cheapest_trusted(survival, policy.settings.threshold, cost)
        assert (candidates[chosen] == compressor.choose(features)).all()
        actions = [env.actions[c] for c in candidates]
        rows = collected.outcomes
        found = {
            "survival": survival,
            "cost": cost,
            "threshold": np.array(policy.settings.threshold),
            "kept": np.array(
                [
                    [env.score(o[REFERENCE_ACTION], o[a]).accuracy for a in actions]
                    for o in rows
                ]
            ),
            "nbytes": np.array([[o[a].nbytes for a in actions] for o in rows], float),
            "ref": np.array([o[REFERENCE_ACTION].nbytes for o in rows], float),
            "top1": np.array([[o[a].answer[0].score for a in actions] for o in rows]),
            "margin": np.array(
                [[margin(o[a].answer) for a in actions] for o in rows], float
            ),
        }
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(path, **found)
    return found


def margin(answer: Any) -> float:
    """The top-1 score's lead over the second label's."""
    return answer[0].score - (answer[1].score if len(answer) > 1 else 0.0)


def feedback_model(t: dict[str, np.ndarray]) -> np.ndarray:
    """Logistic weights: P(lost) from what the cloud answered to an upload (its top-1
    score and margin), fitted on every (training photo, candidate): the agent file's
    answer feedback (:mod:`adacompress.device.answer_feedback`)."""
    return np.array(fit_weights(t["top1"], t["margin"], 1 - t["kept"]))


def lost_proxy(t: dict[str, np.ndarray], fb: np.ndarray, i: int, a: int) -> float:
    """The feedback model's probability that upload ``a`` of photo ``i`` lost the
    answer, from the cloud's confidence in it."""
    z = fb[0] * t["top1"][i, a] + fb[1] * t["margin"][i, a] + fb[2]
    return float(1 / (1 + np.exp(-z)))


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class Recalibration:
    """MAP logistic recalibration ``P(kept) = sigmoid(a * logit(s) + b)``; the prior
    (``strength`` pseudo-observations' worth) sits at ``a = 1, b = b0``."""

    def __init__(self, b0: float, strength: float) -> None:
        self.prior = np.array([1.0, b0])
        self.precision = strength
        self.x: list[float] = []
        self.y: list[float] = []
        self.w = self.prior.copy()

    def add(self, s: float, kept: float) -> None:
        self.x.append(float(logit(s)))
        self.y.append(kept)
        x, y = np.array(self.x), np.array(self.y)
        w = self.w.copy()
        for _ in range(8):  # Newton
            p = 1 / (1 + np.exp(-(w[0] * x + w[1])))
            grad = np.array([((p - y) * x).sum(), (p - y).sum()])
            grad += self.precision * (w - self.prior)
            h = p * (1 - p)
            hess = np.array(
                [[(h * x * x).sum(), (h * x).sum()], [(h * x).sum(), h.sum()]]
            ) + self.precision * np.eye(2)
            w = w - np.linalg.solve(hess, grad)
        self.w = w

    def kept(self, s: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.w[0] * logit(s) + self.w[1])))


def offset_at(t: dict[str, np.ndarray], target: float) -> float:
    """The prior's ``b``: the offset that makes the survival model's predicted kept
    rate at the shipped threshold equal ``target`` on these (training) photos."""
    chosen = cheapest_trusted(t["survival"], float(t["threshold"]), t["cost"])
    s = t["survival"][np.arange(len(chosen)), chosen]
    lo, hi = -10.0, 10.0
    for _ in range(60):
        b = (lo + hi) / 2
        if (1 / (1 + np.exp(-(logit(s) + b)))).mean() < target:
            lo = b
        else:
            hi = b
    return (lo + hi) / 2


def simulate(
    t: dict[str, np.ndarray],
    controller: str,
    args: argparse.Namespace,
    seed: int,
    b0: float,
    beta: float,
    fb: np.ndarray,
    fb_rate: float,
    ref_rate: float = 0.0,
) -> dict[str, float]:
    """One stream: the true kept rate on inference photos, bytes, calls."""
    rng = np.random.default_rng(seed)
    n = len(t["ref"])
    order = np.concatenate([rng.permutation(n) for _ in range(args.photos // n + 1)])
    order = order[: args.photos]
    estimate = rng.random(args.photos) < args.p_est
    alpha = 1 - args.target
    theta = float(logit(float(t["threshold"])))
    grid = np.linspace(logit(0.3), logit(0.9995), 200)
    recal = Recalibration(b0, args.prior) if controller == "recal" else None
    seen_surv: list[np.ndarray] = []
    kept, sent, ref, calls = [], 0.0, 0.0, 0
    offset_sum, offset_n = 0.0, 0  # the proxy's excess on this stream's estimates
    by_cost = np.argsort(t["cost"])
    for step, i in enumerate(order):
        surv = t["survival"][i]
        threshold = 1 / (1 + np.exp(-theta))
        a = int(cheapest_trusted(surv[None], threshold, t["cost"])[0])
        if args.fallback == "dearest" and not (surv >= threshold).any():
            a = int(np.argmax(t["cost"]))  # nothing trusted: the safest upload
        if not estimate[step]:
            kept.append(t["kept"][i, a])
            sent += t["nbytes"][i, a]
            ref += t["ref"][i]
            calls += 1
            if controller in ("feedback", "offset", "relative"):
                offset = offset_sum / (offset_n + args.offset_prior)
                predicted = lost_proxy(t, fb, i, a)
                theta += args.feedback_step * (predicted - fb_rate - offset)
        else:
            calls += 2
            if controller in ("aci", "feedback", "offset", "relative"):
                err = 1 - t["kept"][i, a]
                theta += args.gamma * (err - alpha)
                if controller == "offset":
                    offset_sum += lost_proxy(t, fb, i, a) - err - (fb_rate - alpha)
                    offset_n += 1
                elif controller == "relative":
                    dearest = int(np.argmax(t["cost"]))
                    offset_sum += lost_proxy(t, fb, i, dearest) - ref_rate
                    offset_n += 1
            elif controller == "ladder":
                lower = ladder(surv, theta, t["cost"], args)
                calls += len(set(lower) - {a})
                err = np.mean([1 - t["kept"][i, c] for c in lower])
                theta += args.gamma * (err - beta)
            elif recal is not None:
                recal.add(surv[a], t["kept"][i, a])
                rank = int(np.flatnonzero(by_cost == a)[0])
                for extra in by_cost[max(0, rank - args.extra) : rank][::-1]:
                    recal.add(surv[extra], t["kept"][i, extra])
                    calls += 1
        seen_surv.append(surv)
        if recal is not None and (estimate[step] or step % 25 == 0):
            theta = choose_threshold(recal, np.array(seen_surv), t["cost"], grid, args)
    return {
        "kept": float(np.mean(kept)),
        "sent": sent / ref,
        "calls": calls / args.photos,
    }


def ladder(
    surv: np.ndarray, theta: float, cost: np.ndarray, args: argparse.Namespace
) -> list[int]:
    """What the agent would send at thresholds ``--step`` logits below ``theta``,
    1 .. ``--extra`` steps down."""
    return [
        int(
            cheapest_trusted(
                surv[None], 1 / (1 + np.exp(-(theta - k * args.step))), cost
            )[0]
        )
        for k in range(1, args.extra + 1)
    ]


def ladder_rate(
    t: dict[str, np.ndarray], target: float, args: argparse.Namespace
) -> float:
    """The ladder's lost rate on these (training) photos at the threshold that keeps
    ``target`` of the answers there: what the ladder controller steers to."""
    n = len(t["ref"])
    rows = np.arange(n)
    for theta in np.linspace(logit(0.3), logit(0.99999), 400):
        chosen = cheapest_trusted(t["survival"], 1 / (1 + np.exp(-theta)), t["cost"])
        if t["kept"][rows, chosen].mean() >= target:
            break
    lost = [
        np.mean(
            [
                1 - t["kept"][i, c]
                for c in ladder(t["survival"][i], theta, t["cost"], args)
            ]
        )
        for i in range(n)
    ]
    return float(np.mean(lost))


def reference_rate(t: dict[str, np.ndarray], fb: np.ndarray) -> float:
    """The feedback model's mean over these (training) photos' dearest candidate:
    where the ``relative`` controller's offset rests."""
    dearest = int(np.argmax(t["cost"]))
    return float(np.mean([lost_proxy(t, fb, i, dearest) for i in range(len(t["ref"]))]))


def feedback_rate(t: dict[str, np.ndarray], fb: np.ndarray, target: float) -> float:
    """The feedback model's mean predicted loss on these (training) photos' uploads
    at the shipped threshold (chosen out of fold for the target; in sample the
    agent looks better than it is): what the feedback controller steers to."""
    rows = np.arange(len(t["ref"]))
    chosen = cheapest_trusted(t["survival"], float(t["threshold"]), t["cost"])
    z = fb[0] * t["top1"][rows, chosen] + fb[1] * t["margin"][rows, chosen] + fb[2]
    return float((1 / (1 + np.exp(-z))).mean())


def choose_threshold(
    recal: Recalibration,
    seen: np.ndarray,
    cost: np.ndarray,
    grid: np.ndarray,
    args: argparse.Namespace,
) -> float:
    """The lowest threshold logit whose predicted kept rate over ``seen`` reaches
    the target plus the margin."""
    kept = recal.kept(seen)
    goal = args.target + args.margin
    for theta in grid:
        chosen = cheapest_trusted(seen, 1 / (1 + np.exp(-theta)), cost)
        if kept[np.arange(len(seen)), chosen].mean() >= goal:
            return float(theta)
    return float(grid[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    parser.add_argument(
        "--streams", nargs="+", default=["train", "test", "bsds500", "dark"]
    )
    parser.add_argument("--controllers", nargs="+", default=["frozen", "aci", "recal"])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--p-est", type=float, default=0.05)
    parser.add_argument("--gamma", type=float, default=2.0)
    parser.add_argument("--extra", type=int, default=2, help="recal: cheaper calls")
    parser.add_argument("--prior", type=float, default=20.0, help="recal: strength")
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--step", type=float, default=1.0, help="ladder: logits")
    parser.add_argument("--feedback-step", type=float, default=0.1)
    parser.add_argument(
        "--offset-prior",
        type=float,
        default=20.0,
        help="offset: the pseudo-estimates (at no offset) the proxy's offset starts "
        "from",
    )
    parser.add_argument(
        "--fallback",
        choices=("likeliest", "dearest"),
        default="likeliest",
        help="when no candidate is trusted: the likeliest to keep (the agent's "
        "rule) or the dearest",
    )
    add_smoke(parser)
    args = parser.parse_args(argv)
    configure_threads()
    folder = TABLES
    if args.smoke:
        limit_splits(10)
        args.backends, args.streams = ["lite0"], ["test"]
        args.seeds, args.photos = 2, 50
        folder = smoke_path(TABLES)
    report: dict[str, Any] = {}
    for backend in args.backends:
        train = table(backend, "train", folder)
        b0 = offset_at(train, args.target)
        beta = ladder_rate(train, args.target, args)
        fb = feedback_model(train)
        fb_rate = feedback_rate(train, fb, args.target)
        ref_rate = reference_rate(train, fb)
        print(
            f"{backend}: ladder rate on train {beta:.4f}, feedback {fb}, its rate "
            f"{fb_rate:.4f}",
            flush=True,
        )
        for stream in args.streams:
            t = table(backend, stream, folder)
            for controller in args.controllers:
                runs = [
                    simulate(t, controller, args, s, b0, beta, fb, fb_rate, ref_rate)
                    for s in range(args.seeds)
                ]
                kept = [r["kept"] for r in runs]
                row = {
                    "kept_mean": float(np.mean(kept)),
                    "kept_worst": float(np.min(kept)),
                    "kept_p10": float(np.quantile(kept, 0.1)),
                    "sent": float(np.mean([r["sent"] for r in runs])),
                    "calls": float(np.mean([r["calls"] for r in runs])),
                }
                report[f"{backend}/{stream}/{controller}"] = row
                print(
                    f"{backend:6} {stream:10} {controller:7} "
                    f"kept {row['kept_mean']:.4f}"
                    f" (p10 {row['kept_p10']:.3f}, worst {row['kept_worst']:.3f}) "
                    f"sent {row['sent']:.3f} calls/photo {row['calls']:.3f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
