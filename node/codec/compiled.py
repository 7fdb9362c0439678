"""Generated converters of a ``StructCodec``: one Python function per struct and direction,
with every field's check written inline (``node.codec.schema``).

A struct's conversions run on every transaction a node sees (its decoding, its account's
record, its receipt), and a call per field was most of their cost. Each kind says how its
check and conversion read as Python source (``Kind.wire_source``, ``Kind.value_source``);
this module joins them into ``def`` statements and compiles them once per codec.

The generated functions are the fast pass: they raise ``EncodeError`` or ``SchemaError``
without a message, and the codec repeats a failed conversion on its traced path, which
names the field. They must never accept what the traced path refuses (they may refuse
more: the traced path then decides).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = ["Binder", "SourceKind", "compile_from_wire", "compile_to_wire"]


class Binder:
    """Names objects for generated source: ``bind(obj)`` puts ``obj`` in the namespace the
    source is executed in and returns its name there."""

    __slots__ = ("namespace",)

    def __init__(self) -> None:
        self.namespace: dict[str, object] = {}

    def __call__(self, value: object) -> str:
        name = f"_b{len(self.namespace)}"
        self.namespace[name] = value
        return name


class SourceKind(Protocol):
    """What the compiler asks of a field kind: a check (``None``: nothing to check) and a
    value expression over the variable ``var``, for each direction."""

    def wire_source(self, var: str, bind: Binder) -> tuple[str | None, str]: ...

    def value_source(self, var: str, bind: Binder) -> tuple[str | None, str]: ...


def compile_to_wire(
    cls: type, fields: Sequence[tuple[str, SourceKind]], error: type[Exception]
) -> Callable[[object], list[object]]:
    """``f(value) -> list``: the wire array of a ``cls`` value, or ``error`` raised."""
    bind = Binder()
    checks, values = _sources(fields, bind, wire=True)
    lines = [
        "def to_wire(v):",
        f"    if type(v) is not {bind(cls)}:",
        f"        raise {bind(error)}('')",
        *(f"    f{i} = v.{name}" for i, (name, _) in enumerate(fields)),
        *_check_lines(checks, bind(error)),
        f"    return [{', '.join(values)}]",
    ]
    return _compiled("\n".join(lines), bind, "to_wire", cls)


def compile_from_wire(
    cls: type,
    fields: Sequence[tuple[str, SourceKind]],
    error: type[Exception],
    invariant_errors: tuple[type[Exception], ...],
) -> Callable[[object], Any]:
    """``f(raw) -> cls``: the value of a decoded wire array, or ``error`` raised (also for
    ``invariant_errors`` of the constructor)."""
    bind = Binder()
    checks, values = _sources(fields, bind, wire=False)
    count = len(fields)
    unpack = ", ".join(f"f{i}" for i in range(count)) + ("," if count == 1 else "")
    construct = f"{bind(cls)}({', '.join(values)})"
    lines = [
        "def from_wire(raw):",
        f"    if type(raw) is not list or len(raw) != {count}:",
        f"        raise {bind(error)}('')",
        *([f"    {unpack} = raw"] if count else []),
        *_check_lines(checks, bind(error)),
    ]
    if invariant_errors:
        lines += [
            "    try:",
            f"        return {construct}",
            f"    except {bind(invariant_errors)}:",
            f"        raise {bind(error)}('') from None",
        ]
    else:
        lines.append(f"    return {construct}")
    return _compiled("\n".join(lines), bind, "from_wire", cls)


def _sources(
    fields: Sequence[tuple[str, SourceKind]], bind: Binder, *, wire: bool
) -> tuple[list[str], list[str]]:
    checks: list[str] = []
    values: list[str] = []
    for i, (_, kind) in enumerate(fields):
        source = kind.wire_source if wire else kind.value_source
        check, value = source(f"f{i}", bind)
        if check is not None:
            checks.append(check)
        values.append(value)
    return checks, values


def _check_lines(checks: list[str], error_name: str) -> list[str]:
    if not checks:
        return []
    return [f"    if not ({' and '.join(checks)}):", f"        raise {error_name}('')"]


def _compiled(source: str, bind: Binder, name: str, cls: type) -> Callable[..., Any]:
    namespace = dict(bind.namespace)
    # The source is built here from the kinds' own fragments, never from input.
    exec(compile(source, f"<codec {cls.__name__}.{name}>", "exec"), namespace)
    function: Callable[..., Any] = namespace[name]  # type: ignore[assignment]
    return function
