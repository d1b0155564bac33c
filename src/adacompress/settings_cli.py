"""Command-line options generated from settings dataclasses (shared by both CLIs).

The string literal under each dataclass field is its help text, so a setting is
declared, typed and documented once (CleanRL's style, without a dependency).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from collections.abc import Collection, Iterable, Mapping
from functools import cache
from typing import Any


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


def add_settings(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    choices: Mapping[str, Iterable[str]] | None = None,
    hidden: Collection[str] = (),
    extra_help: Mapping[str, str] | None = None,
    default_from: str | None = None,
) -> None:
    """One ``--option`` per dataclass field, typed and documented from the class.

    Args:
        choices: allowed values per field name.
        hidden: fields that get no option.
        extra_help: text appended to a field's help.
        default_from: every default becomes None ("take it from that option").
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        if f.name in hidden:
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
        help_text += (extra_help or {}).get(f.name, "")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction,
                                default=default, help=help_text)  # fmt: skip
            continue
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            parser.add_argument(flag, type=item, nargs="+", default=default,
                                help=help_text)  # fmt: skip
            continue
        allowed = (choices or {}).get(f.name)
        parser.add_argument(flag, type=kind, default=default,
                            choices=list(allowed) if allowed is not None else None,
                            help=help_text)  # fmt: skip


def pick(
    cls: type, namespace: argparse.Namespace, *, hidden: Collection[str] = ()
) -> dict[str, Any]:
    """The parsed values of ``cls``'s fields (lists back to tuples where typed so)."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in hidden:
            continue
        value = getattr(namespace, f.name)
        values[f.name] = tuple(value) if isinstance(value, list) else value
    return values
