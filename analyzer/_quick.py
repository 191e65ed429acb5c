"""Make frozen slotted dataclasses without their per-field cost.

A frozen dataclass's `__init__` sets each field through `object.__setattr__`, about 0.15 µs a
field, which dominates when one value is made per packet, per line or per header field.
`quick_constructor(cls)` returns a function with the same parameters as `cls` that fills an
instance of a plain class with the same slots and then gives it the class `cls` (Python allows
`__class__` assignment between classes whose slots are the same). What it returns is an ordinary
`cls`: frozen, equal to, hashing and printing like the value `cls(...)` makes, five times faster.

The function is generated once per class, as `dataclasses` generates `__init__`. Only classes
it can copy faithfully are accepted: frozen and slotted, no `__post_init__`, every field set by
`__init__` and without a default factory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

P = ParamSpec("P")
T = TypeVar("T")


def quick_constructor(cls: Callable[P, T]) -> Callable[P, T]:
    """A function that makes `cls(...)` from the same arguments, faster (see the module)."""
    if not isinstance(cls, type) or not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if "__mypyc_attrs__" in cls.__dict__:
        # Defined in a module compiled by mypyc: a native class, whose instances cannot change
        # `__class__` and keep their fields in C structs, not slots. The class is the constructor.
        return cast(Callable[P, T], cls)
    params = getattr(cls, "__dataclass_params__", None)
    slots: tuple[str, ...] = cls.__dict__.get("__slots__", ())
    fields = dataclasses.fields(cls)
    if (
        params is None
        or not params.frozen
        or sorted(slots) != sorted(f.name for f in fields)
        or hasattr(cls, "__post_init__")
        or any(not f.init or f.default_factory is not dataclasses.MISSING for f in fields)
    ):
        raise TypeError(f"{cls.__name__} is not a frozen slotted dataclass with plain fields")
    layout = type(f"_{cls.__name__}Layout", (), {"__slots__": slots})
    namespace: dict[str, Any] = {"_Layout": layout, "_cls": cls}
    arguments = []
    for f in fields:
        if f.default is dataclasses.MISSING:
            arguments.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            arguments.append(f"{f.name}=_default_{f.name}")
    lines = [
        f"def new_{cls.__name__}({', '.join(arguments)}):",
        "    item = _Layout()",
        *(f"    item.{f.name} = {f.name}" for f in fields),
        "    item.__class__ = _cls",
        "    return item",
    ]
    exec("\n".join(lines), namespace)
    made = namespace[f"new_{cls.__name__}"]
    made.__doc__ = f"`{cls.__name__}(...)`, made without the frozen dataclass's per-field cost."
    return cast(Callable[P, T], made)
