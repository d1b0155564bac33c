"""Output names: every input its own, the same on every rerun, earlier runs' names
kept."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adacompress.device.manifest import UPLOAD_EXTENSIONS, Entry
from adacompress.device.output_names import expand_inputs, plan_outputs


def names(
    found: list[tuple[str, str]], earlier: dict[str, Entry] | None = None
) -> dict[str, str]:
    pairs = [(Path(s), PurePosixPath(r)) for s, r in found]
    return {
        s: o.as_posix() for s, o in plan_outputs(pairs, earlier or {}).stems.items()
    }


def test_a_folder_keeps_relative_paths_and_stems_stay_apart(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    for name in ("x.png", "x.jpg", "y.jpeg", ".hidden.jpg"):
        (tmp_path / "a" / name).write_bytes(b"")
    found = expand_inputs([tmp_path / "a"])
    planned = plan_outputs(found, {}).stems
    # Planned without an extension: the upload's format gives it (x.jpg, x.png.jpg).
    assert {Path(s).name: o.as_posix() for s, o in planned.items()} == {
        "x.jpg": "x",
        "x.png": "x.png",
        "y.jpeg": "y",
    }


def test_colliding_inputs_get_distinct_names() -> None:
    # compress d1 d2 d3 --out o, a.jpg in each: the old fallback gave d2 and d3 both
    # a.jpg(.jpg).
    found = [(f"d{i}/a.jpg", "a.jpg") for i in (1, 2, 3)]
    assert names(found) == {"d1/a.jpg": "a", "d2/a.jpg": "a.jpg", "d3/a.jpg": "a~2"}


def test_an_input_listed_twice_is_one_input(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jpg").write_bytes(b"")
    found = expand_inputs([tmp_path / "d", tmp_path / "d" / "a.jpg"])
    assert [s for s, _ in found] == [tmp_path / "d" / "a.jpg"]


def test_earlier_names_are_kept_and_taken() -> None:
    earlier = {
        "old/a.jpg": Entry("old/a.jpg", output="a.jpg"),
        "d2/a.jpg": Entry("d2/a.jpg", output="a~2.webp"),
    }
    found = [("d1/a.jpg", "a.jpg"), ("d2/a.jpg", "a.jpg")]
    assert names(found, earlier) == {"d1/a.jpg": "a.jpg", "d2/a.jpg": "a~2"}
    plan = plan_outputs([(Path(s), PurePosixPath(r)) for s, r in found], earlier)
    assert list(plan.kept) == ["old/a.jpg", "d2/a.jpg"]


def test_names_compare_case_folded_and_never_double_as_folders() -> None:
    found = [("A.jpg", "A.jpg"), ("a.png", "a.png"), ("x/b.png", "a.jpg/b.png")]
    planned = names(found)
    assert planned["A.jpg"] == "A" and planned["a.png"] == "a.png"
    # a.jpg is A's output file: nothing may need it as a folder
    assert not planned["x/b.png"].startswith("a.jpg/")


def test_a_damaged_manifest_claiming_one_name_twice_keeps_the_first() -> None:
    earlier = {
        "p": Entry("p", output="a.jpg"),
        "q": Entry("q", output="a.webp"),
    }
    plan = plan_outputs([], earlier)
    assert list(plan.kept) == ["p"] and plan.dropped == 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["d1", "d2", "D1", "d1/sub"]),
            st.sampled_from(["a", "A", "a.jpg", "a~2", "sub", "a.png"]),
            st.sampled_from([".jpg", ".png", ".JPG", ""]),
        ),
        max_size=12,
    ),
    st.lists(st.sampled_from(["a.jpg", "a.png.jpg", "a~2.webp", "sub/a.jpg"])),
)
def test_every_output_name_is_distinct_whatever_the_inputs(
    layout: list[tuple[str, str, str]], outputs: list[str]
) -> None:
    found = [(Path(f"{r}/{n}{e}"), PurePosixPath(f"{n}{e}")) for r, n, e in layout]
    found = list(dict((str(s), (s, p)) for s, p in found).values())
    earlier = {f"old{i}": Entry(f"old{i}", output=o) for i, o in enumerate(outputs)}
    plan = plan_outputs(found, earlier)
    stems = list(plan.stems.values()) + [
        PurePosixPath(e.output).with_suffix("") for e in plan.kept.values() if e.output
    ]
    files = [f"{s}{x}".casefold() for s in stems for x in UPLOAD_EXTENSIONS]
    assert len(files) == len(set(files))
    folders = {p.as_posix().casefold() for s in stems for p in s.parents if p.parts}
    assert not folders & set(files)
    assert set(plan.stems) == {str(s) for s, _ in found}
    # the same inputs and manifest: the same names
    assert plan_outputs(found, earlier) == plan
