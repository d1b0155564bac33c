"""Options from settings dataclasses: groups, presets, help, choices."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from basekit.registry import Registry
from basekit.settings_cli import add_settings, build, given, merged, pick


@dataclass
class Inner:
    """A group."""

    backend: str = "lite0"
    """which cloud"""
    sizes: tuple[int, ...] = (1, 2)
    """some widths"""


@dataclass
class Outer:
    """A command."""

    inner: Inner = field(default_factory=Inner)
    """the group"""
    steps: int = 10
    """how many steps"""
    fast: bool = False
    """go fast"""
    mode: str = "a"
    """the mode"""


def parser(**kwargs: object) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_settings(p, Outer, choices={"mode": ["a", "b"]}, **kwargs)  # type: ignore[arg-type]
    return p


def test_groups_become_option_groups_and_nested_settings() -> None:
    p = parser()
    titles = [g.title for g in p._action_groups]
    assert "the group" in titles
    args = p.parse_args(["--backend", "x", "--sizes", "3", "4", "--fast"])
    settings = build(Outer, pick(Outer, args))
    assert settings == Outer(Inner("x", (3, 4)), 10, True, "a")
    with pytest.raises(SystemExit):
        p.parse_args(["--mode", "c"])
    help_text = p.format_help()
    assert "which cloud (default: lite0)" in help_text and "{a,b}" in help_text


def test_preset_defaults_and_overrides() -> None:
    presets = Registry("preset", {"one": Outer(), "two": Outer(Inner("y"), steps=5)})
    p = parser(default_from="--preset", defaults=presets.get("one"))
    args = p.parse_args(["--steps", "7", "--backend", "z"])
    wanted = given(pick(Outer, args))
    assert wanted == {"inner": {"backend": "z"}, "steps": 7}
    assert presets.get("two", wanted) == Outer(Inner("z"), steps=7)
    assert presets.get(None) == Outer()  # the first is the default
    assert "--preset default: 10" in p.format_help()
    with pytest.raises(ValueError, match=r"unknown preset 'three' \(known: one, two\)"):
        presets.get("three")
    assert merged(Outer(), {"inner": {"sizes": ()}}).inner == Inner("lite0", ())


@dataclass
class Documented:
    """Fields whose help says their default, and one whose help does not."""

    cache: str | None = None
    """where answers go (default: $CACHE or the user's cache folder)"""
    host: str = "127.0.0.1"
    """address to bind (loopback by default)"""
    steps: int = 10
    """how many steps"""


def test_a_help_that_states_its_default_gets_no_second_one() -> None:
    p = argparse.ArgumentParser()
    add_settings(p, Documented)
    helps = {a.dest: a.help for a in p._actions}
    assert (
        helps["cache"]
        == "where answers go (default: $CACHE or the user's cache folder)"
    )
    assert helps["host"] == "address to bind (loopback by default)"
    assert helps["steps"] == "how many steps (default: 10)"
