"""A fuzzing campaign over the readers of untrusted files (issue 31): any input gives
a result or a one-line error (a ValueError), never another exception, in bounded
memory and time.

    python benchmarks/fuzz_untrusted.py [--examples N] [--targets NAME ...]
        [--seed 0] [--memory-mb 3072] [--example-limit 30] [--smoke]
        [--json out/fuzz_untrusted.json]

Targets, each run in a process of its own (its own peak memory, under an address
space limit of ``--memory-mb``, as the issue's probes ran):

- ``card``: ``AgentCard.parse`` of any JSON object and of an exported card with
  fields replaced or dropped; ``AgentCard.read`` of any bytes as ``card.json``.
- ``agent_file``: ``Compressor.load`` of an agent file -- the shipped lite0-paper
  payload with settings, metadata, feature scaling, weights and top-level fields
  replaced (tensors of any dtype and shape, zero-stride views of up to 10^8 rows),
  and raw or byte-mutated files -- then a decision when it loads.
- ``graph``: ``onnx_reader.read_model`` and ``graph_check`` (``inspect_graph``,
  ``output_shapes`` at the exported inputs) of random bytes and of the exported
  state and policy graphs mutated byte-wise and structurally (operators,
  attributes, constants, wiring, shapes, opsets, nodes dropped or repeated).
- ``agent_folder``: ``Compressor.load`` of an exported lite0 folder whose card and
  graphs are mutated as above, the card's hashes recomputed or not (recomputed: the
  attacker's best case), then ``compress`` of a photo when it loads.
- ``manifest``: ``read_manifest`` of any bytes and of entries with fields replaced,
  deep or overlong lines; each entry read is then checked by ``OutFolder.intact``.
- ``answer_cache``: ``AnswerCache.get_answers`` / ``get_features`` with any value
  stored in any column, and byte-mutated cache files.
- ``run_state``: what resuming a run reads (``RunStore.load``, ``check_state``,
  ``transitions``, ``RunState.resume``, ``records``) with any value in any column,
  a saved state with fields replaced or dropped, and byte-mutated state files.

Reported per target: examples run; results; one-line errors; distinct outcomes
(results, and errors by their message with paths, numbers and quoted values
blanked); other exceptions (must be 0: anything but a one-line ValueError, or an
example over ``--example-limit`` seconds, which ends the target's process); the
peak RSS once set up (one example run), the highest peak during an example, and the
largest rise of one example over the RSS it started from (Linux: the peak is reset
before each example through ``/proc/self/clear_refs``); the slowest example.
Hypothesis generates the inputs (generate phase only: no shrinking, no example
database), seeded: a rerun draws the same inputs. It draws recipes (a mutation's
edits, a nesting depth, a tensor's shape) that each example builds, since what it
draws it keeps. Exit 1 when anything other than a result or a one-line error
happened.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import memory_mb

TARGETS = (
    "card",
    "agent_file",
    "graph",
    "agent_folder",
    "manifest",
    "answer_cache",
    "run_state",
)
EXAMPLES = {
    "card": 4000,
    "agent_file": 1200,
    "graph": 2500,
    "agent_folder": 500,
    "manifest": 4000,
    "answer_cache": 3000,
    "run_state": 1500,
}
"""Examples per target of the default campaign (about five minutes on two cores)."""
SMOKE_EXAMPLES = 15


# -- the parent: one process per target, a table ----------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--examples",
        type=int,
        help="examples per target (default: a per-target count, about five "
        "minutes in all)",
    )
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=TARGETS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=3072,
        help="address space limit of each target's process (0: none)",
    )
    parser.add_argument(
        "--example-limit",
        type=float,
        default=30.0,
        help="seconds one example may take before its process is ended",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"{SMOKE_EXAMPLES} examples per target (seconds: for CI)",
    )
    parser.add_argument("--json", type=Path, help="write the report here too")
    parser.add_argument("--child", choices=TARGETS, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    with tempfile.TemporaryDirectory(prefix="fuzz-untrusted-") as tmp:
        work = Path(tmp)
        prepare(work)
        reports = []
        for target in args.targets:
            examples = (
                SMOKE_EXAMPLES if args.smoke else args.examples or EXAMPLES[target]
            )
            reports.append(run_target(target, examples, args, work))
    print_table(reports)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports, indent=2) + "\n")
    return 0 if all(r["ok"] for r in reports) else 1


def prepare(work: Path) -> None:
    """What the targets mutate: an exported lite0 agent (paper actions)."""
    from adacompress.device.compressor import Compressor
    from adacompress.device.export import export_agent

    export_agent(Compressor.load("lite0", actions="paper"), work / "exported")


def run_target(
    target: str, examples: int, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    folder = work / target
    folder.mkdir()
    command = [
        sys.executable,
        __file__,
        "--child",
        target,
        "--work",
        str(folder),
        "--examples",
        str(examples),
        "--seed",
        str(args.seed),
        "--memory-mb",
        str(args.memory_mb),
        "--example-limit",
        str(args.example_limit),
    ]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    lines = done.stdout.strip().splitlines()
    try:
        report: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        current = folder / "current.txt"
        report = {
            "target": target,
            "examples": None,
            "other": 1,
            "failures": [
                {
                    "error": f"the process ended ({done.returncode}): "
                    + done.stderr.strip()[-1500:],
                    "input": current.read_text()[:600] if current.exists() else "",
                }
            ],
        }
    report["seconds"] = round(seconds, 1)
    report["ok"] = done.returncode == 0 and report.get("other") == 0
    return report


def print_table(reports: list[dict[str, Any]]) -> None:
    print(
        "| target | examples | results | one-line errors | distinct outcomes | "
        "other exceptions | peak RSS MB (set up → in an example) | largest rise "
        "in one example MB | slowest example ms | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in reports:
        if r.get("examples") is None:
            print(f"| {r['target']} | ended early | | | | {r['other']} | | | | |")
            continue
        print(
            f"| {r['target']} | {r['examples']} | {r['results']} | {r['errors']} | "
            f"{r['distinct']} | {r['other']} | {r['rss_before_mb']:.0f} → "
            f"{r['rss_peak_mb']:.0f} | {r['rise_mb']:.0f} | {r['slowest_ms']:.0f} | "
            f"{r['seconds']} |"
        )
    for r in reports:
        for failure in r.get("failures", []):
            print(f"\n{r['target']}: {failure['error']}\n  input: {failure['input']}")


# -- the child: one target's campaign -------------------------------------------


class Tally:
    """Outcomes of one target's examples."""

    def __init__(self, work: Path, limit: float) -> None:
        self.work, self.limit = work, limit
        self.outcomes: Counter[str] = Counter()
        self.results = self.errors = self.other = 0
        self.slowest = self.rise = self.peak = 0.0
        self.slowest_input = self.rise_input = ""
        self.failures: list[dict[str, str]] = []
        self._current = work / "current.txt"

    def run(self, check: Callable[[Any], str], recipe: Any) -> None:
        import faulthandler

        shown = _show(recipe)
        self._current.write_text(shown)
        case = built(recipe)
        resident = reset_peak()
        faulthandler.dump_traceback_later(self.limit, exit=True)
        start = time.perf_counter()
        try:
            outcome = "result: " + check(case)
            self.results += 1
        except ValueError as err:
            text = str(err)
            if text and "\n" not in text:
                outcome = "error: " + self._blank(text)
                self.errors += 1
            else:
                outcome = self._fail(err, shown, "a ValueError not of one line")
        except Exception as err:  # noqa: BLE001 -- what the campaign looks for
            outcome = self._fail(err, shown, type(err).__name__)
        finally:
            faulthandler.cancel_dump_traceback_later()
        elapsed = time.perf_counter() - start
        peak = peak_rss_mb()
        self.peak = max(self.peak, peak)
        if resident is not None and peak - resident > self.rise:
            self.rise, self.rise_input = peak - resident, shown
        if elapsed > self.slowest:
            self.slowest, self.slowest_input = elapsed, shown
        self.outcomes[outcome] += 1

    def _fail(self, err: BaseException, shown: str, kind: str) -> str:
        self.other += 1
        if len(self.failures) < 5:
            where = traceback.extract_tb(err.__traceback__)[-1]
            self.failures.append(
                {
                    "error": f"{kind}: {str(err)[:300]!r} at "
                    f"{where.filename}:{where.lineno}",
                    "input": shown,
                }
            )
        return f"other: {kind}"

    def _blank(self, text: str) -> str:
        text = text.replace(str(self.work), "<dir>")
        text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
        return re.sub(r"-?\d[\d.,e+-]*", "N", text)[:100]

    def report(self, target: str, before: float) -> dict[str, Any]:
        return {
            "target": target,
            "examples": sum(self.outcomes.values()),
            "results": self.results,
            "errors": self.errors,
            "distinct": len(self.outcomes),
            "other": self.other,
            "rss_before_mb": before,
            "rss_peak_mb": self.peak,
            "rise_mb": self.rise,
            "rise_input": self.rise_input[:300],
            "slowest_ms": self.slowest * 1000,
            "slowest_input": self.slowest_input[:300],
            "outcomes": dict(self.outcomes.most_common(40)),
            "failures": self.failures,
        }


def peak_rss_mb() -> float:
    """This process's peak resident memory since :func:`reset_peak`: VmHWM
    (Linux; ``ru_maxrss`` would carry the parent's peak over the exec, and cannot
    be reset), else ``ru_maxrss``."""
    peak = memory_mb().get("VmHWM")
    if peak is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak


def reset_peak() -> float | None:
    """Reset the peak to the resident memory now and return that (None where the
    peak cannot be reset)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return memory_mb().get("VmRSS")


class Lazy:
    """A value an example builds when it runs, from a small recipe: hypothesis
    keeps what it draws (of thousands of examples), so it draws recipes."""

    __slots__ = ("label", "make", "args")

    def __init__(self, label: str, make: Callable[..., Any], *args: Any) -> None:
        self.label, self.make, self.args = label, make, args

    def __repr__(self) -> str:
        shown = [
            f"<{len(a)} bytes>"
            if isinstance(a, bytes | bytearray) and len(a) > 64
            else a
            for a in self.args
        ]
        return f"{self.label}{tuple(shown)!r}"


def built(value: Any) -> Any:
    """``value`` with every :class:`Lazy` in it built."""
    if isinstance(value, Lazy):
        return value.make(*(built(a) for a in value.args))
    if isinstance(value, tuple):
        return tuple(built(v) for v in value)
    if isinstance(value, list):
        return [built(v) for v in value]
    if isinstance(value, dict):
        return {k: built(v) for k, v in value.items()}
    return value


def _show(case: Any) -> str:
    text = repr(case)
    return text if len(text) <= 600 else text[:600] + f"... ({len(text)} chars)"


def child(args: argparse.Namespace) -> int:
    import warnings

    from hypothesis import HealthCheck, Phase, given, seed, settings

    if args.memory_mb:
        limit = args.memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    warnings.simplefilter("ignore")  # torch and Pillow warn of the junk they refuse
    work: Path = args.work
    target = TARGETS_BY_NAME[args.child](work, work.parent / "exported")
    tally = Tally(work, args.example_limit)
    tally.run(target.check, target.sound)  # setup and one example: the baseline
    if tally.results != 1:  # the harness itself is wrong
        tally.failures.append({"error": "the sound input gave no result", "input": ""})
        print(json.dumps({**tally.report(args.child, 0.0), "other": 1}))
        return 1
    tally = Tally(work, args.example_limit)
    before = peak_rss_mb()

    @seed(args.seed)
    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy())
    def campaign(case: Any) -> None:
        tally.run(target.check, case)

    campaign()
    print(json.dumps(tally.report(args.child, before)))
    return 0 if tally.other == 0 else 1


# -- strategies shared by the targets --------------------------------------------

INTERESTING_INTS = (
    *(0, 1, -1, 2, 3, 5, 7, 8, 10, 11, 15, 16, 17, 31, 32, 64, 160, 224, 255, 256),
    *(512, 1023, 1024, 4095, 4096, 65535, 65536, 2**31 - 1, 2**31, 2**32),
    *(2**53, 2**62, 2**63 - 1, -(2**63), 2**64, 10**15, 10**100),
)


def _strategies() -> Any:
    """The shared strategies (hypothesis is imported only by a target's process)."""
    from hypothesis import strategies as st

    ints = st.sampled_from(INTERESTING_INTS) | st.integers()
    floats = st.floats() | st.sampled_from([0.0, -0.0, 0.5, 1e-300, 1e300, 1e308])
    texts = st.text(max_size=20) | st.sampled_from(
        ["", "lite0", "q", "survival", "photo", "view", "jpeg", "webp", "5", "75"]
        + ["../../etc/passwd", "/etc/passwd", "a\0b", "x" * 300, "é", "state.onnx"]
    )
    scalars = st.none() | st.booleans() | ints | floats | texts
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=6)
        | st.dictionaries(texts, inner, max_size=6),
        max_leaves=30,
    )
    deep = st.integers(1, 200_000).map(lambda n: Lazy("deep", _nested, n))
    edits = st.lists(
        st.tuples(
            st.sampled_from(["flip", "set", "insert", "delete", "truncate", "repeat"]),
            st.floats(0, 1),
            st.binary(min_size=1, max_size=8),
            st.integers(1, 4096),
        ),
        min_size=1,
        max_size=4,
    )
    return st, ints, floats, texts, values, deep, edits


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def mutated(label: str, data: bytes) -> Callable[[Any], Lazy]:
    """Byte edits -> the recipe of ``data`` with them applied."""
    return lambda edits: Lazy(label, mutate, data, edits)


def mutate(data: bytes, edits: list[tuple[str, float, bytes, int]]) -> bytes:
    """``data`` with byte-level ``edits`` (kind, where as a share of the length,
    bytes, a count) applied in turn."""
    out = bytearray(data)
    for kind, where, chunk, count in edits:
        at = min(int(where * len(out)), max(len(out) - 1, 0))
        if kind == "flip" and out:
            out[at] ^= 1 << (chunk[0] % 8)
        elif kind == "set":
            out[at : at + len(chunk)] = chunk
        elif kind == "insert":
            out[at:at] = chunk
        elif kind == "delete":
            del out[at : at + count]
        elif kind == "truncate":
            del out[at:]
        elif kind == "repeat":
            out[at:at] = bytes(out[at : at + count]) * 2
    return bytes(out)


def leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value (containers and leaves)."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += leaf_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += leaf_paths(item, (*prefix, index))
    return paths


def replaced(data: Any, changes: list[tuple[tuple[Any, ...], Any, bool]]) -> Any:
    """A deep copy of ``data`` with each path set to a value, or dropped."""
    data = json.loads(json.dumps(data))
    for path, value, drop in changes:
        target = data
        try:
            for key in path[:-1]:
                target = target[key]
            if drop:
                del target[path[-1]]
            else:
                target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed the way there
    return data


# -- the targets -----------------------------------------------------------------


class CardTarget:
    """The agent card: a JSON object, a card with fields changed, any card file."""

    def __init__(self, work: Path, exported: Path) -> None:
        from adacompress.device.card import AgentCard

        self.card_type = AgentCard
        self.work = work
        self.valid = json.loads((exported / "card.json").read_text())
        self.paths = leaf_paths(self.valid)
        self.text = (exported / "card.json").read_bytes()
        self.sound: Any = ("file", self.text)

    def strategy(self) -> Any:
        st, _, _, texts, values, deep, edits = _strategies()
        changes = st.lists(
            st.tuples(st.sampled_from(self.paths), values, st.booleans()),
            min_size=1,
            max_size=3,
        )
        return st.one_of(
            st.tuples(st.just("object"), st.dictionaries(texts, values, max_size=8)),
            st.tuples(st.just("fields"), changes),
            st.tuples(st.just("file"), st.binary(max_size=400)),
            st.tuples(st.just("file"), edits.map(mutated("card.json", self.text))),
            st.tuples(st.just("file"), deep),
            st.tuples(
                st.just("file"), changes.map(lambda c: Lazy("card", self._dumps, c))
            ),
        )

    def _dumps(self, changes: Any) -> str:
        return json.dumps(replaced(self.valid, changes))

    def check(self, case: tuple[str, Any]) -> str:
        kind, value = case
        if kind == "file":
            (self.work / "card.json").write_bytes(
                value.encode() if isinstance(value, str) else value
            )
            card = self.card_type.read(self.work)
        else:
            data = value if kind == "object" else replaced(self.valid, value)
            card = self.card_type.parse(data, self.work / "card.json")
        card.action_tuple()
        card.upload_limits()
        return (
            f"a card of {len(card.actions)} actions, {card.preprocessing.views} views"
        )


class AgentFileTarget:
    """Agent files: the shipped payload changed, raw bytes, mutated files."""

    def __init__(self, work: Path, exported: Path) -> None:
        import numpy as np
        import torch

        from adacompress.device.compressor import Compressor
        from adacompress.device.zoo import shipped

        self.torch, self.np, self.load = torch, np, Compressor.load
        self.path = work / "agent.pt"
        self.file = shipped("lite0-paper").file
        self.payload = torch.load(self.file, weights_only=True)
        self.raw = Path(self.file).read_bytes()
        self.weights = sorted(self.payload["network"])
        self.sound: Any = ("edits", [])

    def strategy(self) -> Any:
        st, ints, _, texts, values, _, edits = _strategies()
        torch = self.torch
        dtypes = st.sampled_from(
            [torch.float32, torch.float64, torch.float16, torch.bfloat16]
            + [torch.int64, torch.int8, torch.bool, torch.complex64]
        )
        fills = st.sampled_from([0.0, 1.0, -1.0, 1e30, float("nan"), float("inf")])
        shapes = st.lists(st.integers(0, 20), max_size=3).map(tuple)
        tensors = st.one_of(
            st.builds(
                lambda s, d, f: Lazy(
                    "full", lambda *a: torch.full(*a[:2]).to(a[2]), s, f, d
                ),
                shapes,
                dtypes,
                fills,
            ),
            st.builds(  # a view of up to 10^8 rows over 11 numbers
                lambda rows: Lazy(
                    "strided",
                    lambda r: torch.as_strided(torch.zeros(11), (r, 11), (0, 1)),
                    rows,
                ),
                st.integers(1, 10**8),
            ),
            st.builds(
                lambda n: Lazy("transposed", lambda m: torch.zeros(11, m).t(), n),
                st.integers(1, 20),
            ),
        )
        setting_values = (
            values
            | st.lists(st.sampled_from(INTERESTING_INTS), max_size=5)
            | st.sampled_from(INTERESTING_INTS)
        )
        setting_keys = st.sampled_from(sorted(self.payload["settings"]) + ["x"])
        meta_keys = st.sampled_from(
            sorted(self.payload["metadata"]) + ["actions", "photo_cap", "top_k"]
        )
        top_keys = st.sampled_from(
            ["feature_mean", "feature_std", "epsilon", "steps", "metadata"]
            + ["settings", "format", "network", "q"]
        )
        edit = st.one_of(
            st.tuples(st.just("setting"), setting_keys, setting_values),
            st.tuples(st.just("metadata"), meta_keys, values),
            st.tuples(st.just("top"), top_keys, tensors | values),
            st.tuples(st.just("weight"), st.sampled_from(self.weights), tensors),
            st.tuples(st.just("drop"), top_keys, st.none()),
        )
        return st.one_of(
            st.tuples(st.just("edits"), st.lists(edit, min_size=1, max_size=4)),
            st.tuples(st.just("bytes"), st.binary(max_size=2000)),
            st.tuples(st.just("bytes"), edits.map(mutated("agent.pt", self.raw))),
        )

    def check(self, case: tuple[str, Any]) -> str:
        kind, value = case
        if kind == "bytes":
            self.path.write_bytes(value)
        else:
            payload = dict(self.payload)
            for part, key, new in value:
                if part in ("setting", "metadata", "weight"):
                    name = {"setting": "settings", "weight": "network"}.get(part, part)
                    base = payload.get(name)
                    payload[name] = {
                        **(base if isinstance(base, dict) else {}),
                        key: new,
                    }
                elif part == "top":
                    payload[key] = new
                else:
                    payload.pop(key, None)
            self.torch.save(payload, self.path)
        compressor = self.load(self.path)
        states = self.np.random.default_rng(0).normal(
            size=(4, compressor.extractor.dim)
        )
        chosen = compressor.choose(states.astype(self.np.float32))
        return f"an agent choosing {len(set(chosen.tolist()))} actions"


class GraphMutations:
    """Structural mutations of an ONNX graph (the ``onnx`` package builds them; the
    reader under test never uses it)."""

    OPS = (
        "Add", "Mul", "Gemm", "Conv", "Reshape", "Slice", "Gather", "Concat",
        "ConstantOfShape", "Expand", "Tile", "TopK", "ArgMax", "Pad", "Transpose",
        "Loop", "If", "Scan", "Identity", "Resize", "NonZero", "Range", "MatMul",
        "Unique", "Einsum", "", "com.x.Custom",
    )  # fmt: skip
    KINDS = (
        "op", "attribute", "constant", "wiring", "drop", "repeat", "input_dim",
        "output_type", "opset", "metadata", "external", "domain",
    )  # fmt: skip

    def __init__(self, data: bytes) -> None:
        import onnx

        self.onnx = onnx
        self.base = onnx.load_from_string(data)
        self.names = sorted(
            {n for node in self.base.graph.node for n in (*node.input, *node.output)}
            | {i.name for i in self.base.graph.input}
        )

    def strategy(self) -> Any:
        st, ints, floats, texts, _, _, _ = _strategies()
        one = st.tuples(
            st.sampled_from(self.KINDS),
            st.integers(0, 10**6),
            st.integers(0, 10**6),
            ints,
            st.sampled_from(self.OPS),
            floats,
            texts,
        )
        return st.lists(one, min_size=1, max_size=3)

    def apply(self, mutations: list[tuple[Any, ...]]) -> bytes:
        model = self.onnx.ModelProto()
        model.CopyFrom(self.base)
        graph = model.graph
        for kind, i, j, number, op, real, text in mutations:
            nodes = graph.node
            node = nodes[i % len(nodes)] if len(nodes) else None
            if kind == "op" and node is not None:
                node.op_type = op
            elif kind == "attribute" and node is not None and node.attribute:
                attribute = node.attribute[j % len(node.attribute)]
                if attribute.ints:
                    attribute.ints[j % len(attribute.ints)] = _int64(number)
                elif attribute.HasField("t"):
                    _tensor(attribute.t, j, number)
                else:
                    attribute.i, attribute.f = _int64(number), _float32(real)
            elif kind == "constant":
                tensors = [
                    a.t for n in nodes for a in n.attribute if a.HasField("t")
                ] + list(graph.initializer)
                if tensors:
                    _tensor(tensors[i % len(tensors)], j, number)
            elif kind == "wiring" and node is not None and node.input:
                node.input[j % len(node.input)] = (self.names + [""])[
                    number % (len(self.names) + 1)
                ]
            elif kind == "drop" and node is not None:
                nodes.remove(node)
            elif kind == "repeat" and node is not None:
                nodes.add().CopyFrom(node)
            elif kind == "input_dim":
                dims = graph.input[i % len(graph.input)].type.tensor_type.shape.dim
                if dims:
                    dim = dims[j % len(dims)]
                    if number % 5 == 0:
                        dim.dim_param = text
                    else:
                        dim.dim_value = _int64(number)
            elif kind == "output_type":
                graph.output[0].type.tensor_type.elem_type = number % 20
            elif kind == "opset":
                model.opset_import[0].version = _int64(number)
            elif kind == "metadata":
                entry = model.metadata_props.add()
                entry.key = (
                    ["adacompress.actions", "adacompress.candidates"][i % 2]
                    if j % 2
                    else text
                )
                entry.value = json.dumps(number) if j % 3 else text
            elif kind == "external" and graph.initializer:
                tensor = graph.initializer[i % len(graph.initializer)]
                tensor.data_location = self.onnx.TensorProto.EXTERNAL
                entry = tensor.external_data.add()
                entry.key, entry.value = "location", text
            elif kind == "domain" and node is not None:
                node.domain = text
        return model.SerializeToString()


def _int64(number: int) -> int:
    return (number + 2**63) % 2**64 - 2**63


def _float32(value: float) -> float:
    import numpy as np

    with np.errstate(over="ignore"):
        return float(np.float32(value))


def _tensor(tensor: Any, j: int, number: int) -> None:
    """Change one dimension or one integer value of a tensor proto."""
    if j % 2 and tensor.dims:
        tensor.dims[j % len(tensor.dims)] = _int64(number) % 2**40
    elif tensor.int64_data:
        tensor.int64_data[j % len(tensor.int64_data)] = _int64(number)
    elif tensor.data_type == 7 and len(tensor.raw_data) >= 8:
        at = (j % (len(tensor.raw_data) // 8)) * 8
        raw = bytearray(tensor.raw_data)
        raw[at : at + 8] = _int64(number).to_bytes(8, "little", signed=True)
        tensor.raw_data = bytes(raw)
    else:
        tensor.dims.append(_int64(number) % 2**40)


class GraphTarget:
    """The graph reader and checker, on the exported graphs mutated."""

    def __init__(self, work: Path, exported: Path) -> None:
        from adacompress.device.card import GRAPH_FILES, AgentCard
        from adacompress.device.graph_check import (
            CHECK_BATCH,
            inspect_graph,
            output_shapes,
        )

        self.inspect, self.shapes = inspect_graph, output_shapes
        card = AgentCard.read(exported)
        prep, batch = card.preprocessing, CHECK_BATCH
        size = prep.input_size
        self.path = work / "graph.onnx"
        self.raw = {name: (exported / name).read_bytes() for name in GRAPH_FILES}
        state: dict[str, tuple[int, ...]] = {
            "pixels": (batch, prep.views, 3, size, size),
            "log_pixels": (batch, 1),
        }
        model = inspect_graph(self.raw["state.onnx"], self.path)
        (states,) = output_shapes(model, state, self.path)  # (batch, state's length)
        self.inputs = {"state.onnx": state, "policy.onnx": {"state": states}}
        self.mutations = {name: GraphMutations(self.raw[name]) for name in self.raw}
        self.sound: Any = ("policy.onnx", "bytes", self.raw["policy.onnx"])

    def strategy(self) -> Any:
        st, _, _, _, _, _, edits = _strategies()
        names = st.sampled_from(["policy.onnx", "policy.onnx", "state.onnx"])
        return st.one_of(
            st.tuples(names, st.just("bytes"), st.binary(max_size=600)),
            st.tuples(
                st.just("policy.onnx"),
                st.just("bytes"),
                edits.map(mutated("policy.onnx", self.raw["policy.onnx"])),
            ),
            names.flatmap(
                lambda name: st.tuples(
                    st.just(name), st.just("structure"), self.mutations[name].strategy()
                )
            ),
        )

    def check(self, case: tuple[str, str, Any]) -> str:
        name, kind, value = case
        data = value if kind == "bytes" else self.mutations[name].apply(value)
        model = self.inspect(data, self.path)
        shapes = self.shapes(model, self.inputs[name], self.path)
        return f"{name} making {len(shapes)} outputs of ranks " + ",".join(
            str(len(s)) for s in shapes
        )


class AgentFolderTarget:
    """An exported folder: its card and graphs mutated, then loaded and used."""

    def __init__(self, work: Path, exported: Path) -> None:
        import hashlib
        import shutil

        from adacompress.core.datasets import builtin_photos
        from adacompress.device.card import GRAPH_FILES
        from adacompress.device.compressor import Compressor

        self.sha256 = hashlib.sha256
        self.load = Compressor.load
        self.folder = work / "agent"
        self.card = CardTarget(work, exported)
        self.graphs = GraphTarget(work, exported)
        self.photo = builtin_photos()[0].read_bytes()
        shutil.copytree(exported, self.folder)  # whatever else an export holds
        self.written = {
            name: (exported / name).read_bytes() for name in ("card.json", *GRAPH_FILES)
        }
        self.sound: Any = ([], None, None, False)

    def strategy(self) -> Any:
        st, _, _, _, values, _, edits = _strategies()
        card = st.just([]) | st.lists(
            st.tuples(st.sampled_from(self.card.paths), values, st.booleans()),
            min_size=1,
            max_size=2,
        )
        policy = st.none() | self.graphs.mutations["policy.onnx"].strategy().map(
            lambda m: ("structure", m)
        )
        policy |= edits.map(lambda e: ("bytes", e))
        state = st.none() | self.graphs.mutations["state.onnx"].strategy()
        vouch = st.sampled_from([True, True, True, False])  # mostly the best case
        return st.tuples(card, policy, state, vouch)

    def _write(self, name: str, data: bytes) -> None:
        if self.written.get(name) != data:
            (self.folder / name).write_bytes(data)
            self.written[name] = data

    def check(self, case: tuple[Any, Any, Any, bool]) -> str:
        changes, policy, state, vouch = case
        graphs = dict(self.graphs.raw)
        if policy is not None:
            kind, value = policy
            graphs["policy.onnx"] = (
                self.graphs.mutations["policy.onnx"].apply(value)
                if kind == "structure"
                else mutate(graphs["policy.onnx"], value)
            )
        if state is not None:
            graphs["state.onnx"] = self.graphs.mutations["state.onnx"].apply(state)
        card = replaced(self.card.valid, changes)
        if vouch and isinstance(card, dict):
            card["graphs"] = {
                name: self.sha256(data).hexdigest() for name, data in graphs.items()
            }
        for name, data in graphs.items():
            self._write(name, data)
        self._write("card.json", json.dumps(card).encode())
        upload = self.load(self.folder).compress(self.photo)
        return f"an upload at {upload.action.key}"


class ManifestTarget:
    """``manifest.jsonl``: any bytes, entries with fields changed, long lines."""

    def __init__(self, work: Path, exported: Path) -> None:
        from adacompress.device.manifest import (
            MAX_LINE_BYTES,
            plain_output,
            read_manifest,
        )
        from adacompress.device.out_folder import OutFolder

        self.read, self.plain, self.line_bytes = (
            read_manifest,
            plain_output,
            MAX_LINE_BYTES,
        )
        self.path = work / "out" / "manifest.jsonl"
        self.path.parent.mkdir()
        (work / "in").mkdir()
        (work / "in" / "a.jpg").write_bytes(b"photo")
        (self.path.parent / "a.jpg").write_bytes(b"upload")
        self.out = OutFolder(self.path.parent, [work / "in"], [work / "in" / "a.jpg"])
        self.good = {
            "source": str(work / "in" / "a.jpg"),
            "output": "a.jpg",
            "bytes": 6,
            "output_sha256": "0" * 64,
            "width": 3,
            "height": 2,
        }
        self.sound: Any = ("bytes", (json.dumps(self.good) + "\n").encode())

    def strategy(self) -> Any:
        st, ints, _, texts, values, deep, _ = _strategies()
        fields = st.sampled_from(sorted(self.good) + ["action", "skipped", "limits"])
        outputs = st.sampled_from(
            ["../a.jpg", "/etc/passwd", "a/../../b.jpg", "a\\b.jpg", "a\0.jpg"]
            + ["./a.jpg", "in/a.jpg", "a.jpg/", "", ".", "a.JPG", "a.txt", "ü.webp"]
        )
        entry = st.lists(st.tuples(fields, values | outputs | ints), max_size=3).map(
            lambda changes: Lazy("entry", self._entry, changes)
        )
        overlong = st.integers(-8, 8).map(
            lambda n: Lazy("overlong", lambda m: "x" * m, self.line_bytes + n)
        )
        line = st.one_of(
            entry, st.text(max_size=60), deep, values.map(json.dumps), overlong
        )
        lines = st.tuples(
            st.lists(line, min_size=1, max_size=8),
            st.sampled_from(["\n", "\r\n", "\n\n"]),
            st.booleans(),
        ).map(lambda t: Lazy("lines", _joined, *t))
        return st.tuples(st.just("bytes"), st.binary(max_size=4000) | lines)

    def _entry(self, changes: list[tuple[str, Any]]) -> str:
        return json.dumps({**self.good, **dict(changes)})

    def check(self, case: tuple[str, bytes]) -> str:
        self.path.write_bytes(case[1])
        manifest = self.read(self.path)
        for entry in manifest.entries.values():
            if entry.output is not None and not self.plain(entry.output):
                raise AssertionError(f"an entry's output {entry.output!r} was read")
            for name in ("bytes", "width", "height", "source_bytes"):
                value = getattr(entry, name)
                if value is not None and (type(value) is not int or value < 0):
                    raise AssertionError(f"an entry's {name} is {value!r}")
            self.out.intact(entry)
        return f"{len(manifest.entries)} entries, {manifest.ignored} ignored"


def _joined(lines: list[str], separator: str, trailing: bool) -> bytes:
    return (separator.join(lines) + (separator if trailing else "")).encode()


class AnswerCacheTarget:
    """The answer cache: any value in any column, mutated cache files."""

    def __init__(self, work: Path, exported: Path) -> None:
        import sqlite3

        import numpy as np

        from adacompress.core.labels import Label
        from adacompress.exchange.cache import AnswerCache, Outcome

        self.sqlite3, self.np, self.cache_type = sqlite3, np, AnswerCache
        self.path = work / "cache.sqlite"
        with AnswerCache(self.path) as cache:
            good = Outcome(1234, [Label(1, "cat", 0.9), Label(2, "dog", 0.1)])
            cache.put_answers("h", "svc", {"a": good})
            cache.put_features("h", "mean", np.ones(3, np.float32))
        self.raw = self.path.read_bytes()
        self.good = {"labels": None, "nbytes": None, "vector": None}
        with self.sqlite3.connect(self.path) as db:
            self.good["labels"], self.good["nbytes"] = db.execute(
                "SELECT labels, nbytes FROM answers"
            ).fetchone()
            self.good["vector"] = db.execute("SELECT vector FROM features").fetchone()[
                0
            ]
        self.cache = AnswerCache(self.path)
        self.copy = work / "copy.sqlite"
        self.sound: Any = ("column", "labels", self.good["labels"], 3)

    def strategy(self) -> Any:
        st, _, _, _, values, deep, edits = _strategies()
        int64 = st.integers(-(2**63), 2**63 - 1)
        stored = st.one_of(
            st.binary(max_size=64),
            st.text(max_size=64),
            values.map(json.dumps),
            deep,
            st.lists(
                st.tuples(int64, st.text(max_size=4), st.floats()), max_size=3
            ).map(json.dumps),
            st.builds(  # up to 1100 labels: a few drawn, repeated
                lambda labels, n: Lazy(
                    "labels", lambda a, m: json.dumps(a * m), labels, n
                ),
                st.lists(
                    st.tuples(int64, st.text(max_size=4), st.floats()), max_size=3
                ),
                st.integers(1, 1100),
            ),
            int64,
            st.floats(allow_nan=False),
        )
        return st.one_of(
            st.tuples(
                st.just("column"),
                st.sampled_from(sorted(self.good)),
                stored,
                st.integers(1, 8),
            ),
            st.tuples(
                st.just("file"),
                st.just(""),
                edits.map(mutated("cache.sqlite", self.raw)),
                st.just(3),
            ),
        )

    def _set(self, column: str, value: object) -> None:
        table = "features" if column == "vector" else "answers"
        with self.sqlite3.connect(self.path) as db:
            db.execute(f"UPDATE {table} SET {column} = ?", (value,))

    def check(self, case: tuple[str, str, Any, int]) -> str:
        kind, column, value, size = case
        if kind == "file":
            self.copy.write_bytes(value)
            try:
                with self.cache_type(self.copy) as cache:
                    return self._read(cache, size)
            finally:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{self.copy}{suffix}").unlink(missing_ok=True)
        self._set(column, value)
        try:
            return self._read(self.cache, size)
        finally:
            self._set(column, self.good[column])

    def _read(self, cache: Any, size: int) -> str:
        found = cache.get_answers("h", "svc", ["a"])
        for outcome in found.values():
            assert type(outcome.nbytes) is int and outcome.nbytes >= 0
            for label in outcome.answer:
                assert type(label.class_id) is int and type(label.name) is str
                assert self.np.isfinite(label.score)
        vector = cache.get_features("h", "mean", size=size)
        if vector is not None:
            assert vector.shape == (size,) and self.np.isfinite(vector).all()
        return f"{len(found)} answers, {'a' if vector is not None else 'no'} vector"


class RunStateTarget:
    """What resuming a run reads from its ``--state`` folder."""

    METADATA = {"backend": "size-cloud", "features": "mean", "actions": ["5"]}

    def __init__(self, work: Path, exported: Path) -> None:
        import shutil
        import sqlite3

        import numpy as np

        from adacompress.device.policies.q import DQNPolicy
        from adacompress.device.policies.settings import PolicySettings
        from adacompress.exchange.learner import Learner
        from adacompress.runtime.run_state import RunState
        from adacompress.runtime.saved_state import check_state
        from adacompress.runtime.settings import RuntimeSettings
        from adacompress.runtime.store import Record, RunStore, Transition

        self.np, self.sqlite3, self.shutil = np, sqlite3, shutil
        self.check_state, self.store_type = check_state, RunStore
        policy = DQNPolicy(PolicySettings(state_dim=3, n_actions=10, seed=0))
        self.loop = RunState(Learner(policy), RuntimeSettings())
        self.state = {
            **self.loop.state_dict(),
            "rng": json.dumps(np.random.default_rng(0).bit_generator.state),
        }
        self.folder = work / "state"
        with RunStore(self.folder) as store:
            store.start(self.state, self.loop.agent_blob(), self.METADATA)
            record = Record(0, "a.jpg", "estimate", "5", 10, 20, 1.0, 0.5, 0.1, [])
            store.commit(
                record,
                self.state,
                transition=(
                    0,
                    Transition.one_action(np.ones(3, np.float32), 1, 0.5, 10),
                ),
            )
        self.raw = (self.folder / "run.sqlite").read_bytes()
        self.good = {}
        with sqlite3.connect(self.folder / "run.sqlite") as db:
            for table, columns in self.COLUMNS.items():
                row = db.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchone()
                self.good.update(
                    {(table, c): v for c, v in zip(columns, row, strict=True)}
                )
        self.store = RunStore(self.folder)
        self.copy = work / "copy"
        self.sound: Any = (
            "column",
            ("runtime", "state"),
            self.good[("runtime", "state")],
        )

    COLUMNS = {
        "runtime": ("state", "agent", "metadata"),
        "records": ("path", "state", "action", "bytes_uploaded", "accuracy")
        + ("p_est", "labels", "digest", "calls"),
        "transitions": ("generation", "state", "rewards", "observed"),
    }

    def strategy(self) -> Any:
        st, _, _, _, values, deep, edits = _strategies()
        int64 = st.integers(-(2**63), 2**63 - 1)
        stored = st.one_of(
            st.binary(max_size=64),
            st.text(max_size=64),
            values.map(json.dumps),
            deep,
            int64,
            st.floats(allow_nan=False),
        )
        changes = st.lists(
            st.tuples(st.sampled_from(leaf_paths(self.state)), values, st.booleans()),
            min_size=1,
            max_size=3,
        )
        return st.one_of(
            st.tuples(st.just("column"), st.sampled_from(sorted(self.good)), stored),
            st.tuples(
                st.just("column"),
                st.just(("runtime", "state")),
                changes.map(lambda c: Lazy("state", self._dumps, c)),
            ),
            st.tuples(
                st.just("file"),
                st.just(("", "")),
                edits.map(mutated("run.sqlite", self.raw)),
            ),
        )

    def _dumps(self, changes: Any) -> str:
        return json.dumps(replaced(self.state, changes))

    def _set(self, where: tuple[str, str], value: object) -> None:
        with self.sqlite3.connect(self.folder / "run.sqlite") as db:
            db.execute(f"UPDATE {where[0]} SET {where[1]} = ?", (value,))

    def check(self, case: tuple[str, tuple[str, str], Any]) -> str:
        kind, where, value = case
        if kind == "file":
            self.shutil.rmtree(self.copy, ignore_errors=True)
            self.copy.mkdir()
            (self.copy / "run.sqlite").write_bytes(value)
            with self.store_type(self.copy) as store:
                return self._resume(store)
        self._set(where, value)
        try:
            return self._resume(self.store)
        finally:
            self._set(where, self.good[where])

    def _resume(self, store: Any) -> str:
        """What ``Runtime.__init__`` and ``run``'s report read of a state folder."""
        loaded = store.load(self.METADATA)
        if loaded is not None:
            saved, blob = loaded
            saved = self.check_state(saved)
            memory = list(store.transitions(saved["generation"]))
            self.loop.resume(saved, blob, memory)
            self.np.random.default_rng(0).bit_generator.state = json.loads(saved["rng"])
        records = store.records()
        store.done()
        return f"{'resumed' if loaded else 'new'}, {len(records)} records"


TARGETS_BY_NAME: dict[str, Any] = {
    "card": CardTarget,
    "agent_file": AgentFileTarget,
    "graph": GraphTarget,
    "agent_folder": AgentFolderTarget,
    "manifest": ManifestTarget,
    "answer_cache": AnswerCacheTarget,
    "run_state": RunStateTarget,
}


if __name__ == "__main__":
    raise SystemExit(main())
