"""Command-line options generated from settings dataclasses (shared by both CLIs).

The string literal under each dataclass field is its help text, so a setting is
declared, typed and documented once (CleanRL's style, without a dependency). A field
whose type is itself a settings dataclass is a *group*: its fields become options of
their own argparse group, so a group shared by several commands (the cloud, the input
images) is declared once. Option names are the field names, so they must be unique
across a command's groups.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import re
import textwrap
import types
import typing
from collections.abc import Collection, Iterable, Mapping
from dataclasses import fields, is_dataclass, replace
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")

STATES_DEFAULT = re.compile(r"\bdefault:|\(default\b|\bby default\b|\bthe default\b")
"""A help text that matches says what its default is: none is appended to it."""


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The string literal under each field of a dataclass, whitespace collapsed."""
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
            docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


def _group_type(kind: Any) -> type | None:
    """The dataclass of a group field, else None."""
    return kind if isinstance(kind, type) and is_dataclass(kind) else None


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def add_settings(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    choices: Mapping[str, Iterable[str]] | None = None,
    hidden: Collection[str] = (),
    extra_help: Mapping[str, str] | None = None,
    default_from: str | None = None,
    defaults: Any = None,
) -> None:
    """One ``--option`` per dataclass field, typed and documented from the class.

    Args:
        choices: allowed values per field name (listed in the help).
        hidden: fields that get no option.
        extra_help: text appended to a field's help.
        default_from: every default becomes None ("take it from that option", e.g.
            ``--preset``); :func:`given` then collects only what the user set.
        defaults: an instance of ``cls`` whose values are shown as the defaults
            (with ``default_from``: the default preset).
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in fields(cls):
        if f.name in hidden:
            continue
        shown_value = getattr(defaults, f.name) if defaults is not None else _default(f)
        group_cls = _group_type(hints[f.name])
        if group_cls is not None:
            root = parser if isinstance(parser, argparse.ArgumentParser) else None
            target = (
                root.add_argument_group(docs.get(f.name, f.name)) if root else parser
            )
            add_settings(
                target,
                group_cls,
                choices=choices,
                hidden=hidden,
                extra_help=extra_help,
                default_from=default_from,
                defaults=shown_value,
            )
            continue
        _add_option(
            parser,
            f.name,
            hints[f.name],
            docs.get(f.name, ""),
            shown_value,
            choices=(choices or {}).get(f.name),
            extra=(extra_help or {}).get(f.name),
            default_from=default_from,
        )


def _add_option(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    name: str,
    kind: Any,
    doc: str,
    shown: Any,
    *,
    choices: Iterable[str] | None,
    extra: str | None,
    default_from: str | None,
) -> None:
    flag = "--" + name.replace("_", "-")
    default = None if default_from else shown
    if isinstance(shown, tuple):
        shown = " ".join(str(v) for v in shown) or "none"
    elif shown is None:
        shown = "none"
    where = f"{default_from} default: {shown}" if default_from else f"default: {shown}"
    allowed = list(choices) if choices is not None else None
    help_text = f"{doc}{extra or ''}"
    if not STATES_DEFAULT.search(help_text):  # one default an option, not two
        help_text += f" ({where})"
    help_text = help_text.replace("%", "%%")
    if kind is bool:
        parser.add_argument(
            flag, action=argparse.BooleanOptionalAction, default=default, help=help_text
        )
        return
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        parser.add_argument(
            flag,
            type=item,
            nargs="*",
            default=default,
            metavar=name.upper(),
            help=help_text,
        )
        return
    parser.add_argument(
        flag,
        type=kind,
        default=default,
        choices=allowed,
        metavar=None if allowed else name.upper(),
        help=help_text,
    )


def pick(
    cls: type[T], namespace: argparse.Namespace, *, hidden: Collection[str] = ()
) -> dict[str, Any]:
    """The parsed values of ``cls``'s fields; groups become nested dicts (lists back
    to tuples where typed so). Hidden fields are left out."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in hidden:
            continue
        group_cls = _group_type(hints[f.name])
        if group_cls is not None:
            values[f.name] = pick(group_cls, namespace, hidden=hidden)
            continue
        value = getattr(namespace, f.name)
        values[f.name] = tuple(value) if isinstance(value, list) else value
    return values


def given(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without the options left unset (None), groups included."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            inner = given(value)
            if inner:
                out[key] = inner
        elif value is not None:
            out[key] = value
    return out


def build(cls: type[T], values: Mapping[str, Any], **extra: Any) -> T:
    """An instance of ``cls`` from :func:`pick`'s values (groups built too)."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = dict(extra)
    for key, value in values.items():
        group_cls = _group_type(hints[key])
        kwargs[key] = build(group_cls, value) if group_cls is not None else value
    return cls(**kwargs)


def grouped(cls: type, flat: Mapping[str, Any]) -> dict[str, Any]:
    """``flat`` values by option name, nested as ``cls``'s groups hold them (what
    :func:`merged` takes).

    Raises:
        ValueError: a name that is no field of ``cls`` or of its groups (one line).
    """
    left = dict(flat)
    out = _place(cls, left)
    if left:
        raise unknown_choice("setting", next(iter(left)), sorted(_names(cls)))
    return out


def _place(cls: type, left: dict[str, Any]) -> dict[str, Any]:
    """Moves the values of ``cls``'s fields out of ``left``, nested by group."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in fields(cls):
        group_cls = _group_type(hints[f.name])
        if group_cls is not None:
            inner = _place(group_cls, left)
            if inner:
                out[f.name] = inner
        elif f.name in left:
            out[f.name] = left.pop(f.name)
    return out


def _names(cls: type) -> list[str]:
    """Every option name of ``cls``, its groups' included."""
    hints = typing.get_type_hints(cls)
    names: list[str] = []
    for f in fields(cls):
        group_cls = _group_type(hints[f.name])
        names += _names(group_cls) if group_cls is not None else [f.name]
    return names


def merged(base: T, overrides: Mapping[str, Any]) -> T:
    """``base`` with ``overrides`` applied, groups merged field by field."""
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        current = getattr(base, key)
        if isinstance(value, Mapping) and is_dataclass(current):
            changes[key] = merged(current, value)
        else:
            changes[key] = value
    return replace(base, **changes)  # type: ignore[type-var]


def unknown_choice(kind: str, name: str, known: Iterable[str]) -> ValueError:
    """The one-line error for a name that is not registered."""
    return ValueError(f"unknown {kind} {name!r} (known: {', '.join(known)})")
