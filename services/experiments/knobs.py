"""What each training knob accepts, read off `TrainingParams`: specs are checked against it.

The contract lives in `events.models.training`; this module only asks it questions (is a knob
numeric, integer, a choice?) and turns its validation errors into sentences.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import TypeAdapter, ValidationError

from events.models import TRAINING_KNOBS, JSONScalar, TrainingParams

KnobKind = Literal["int", "float", "choice", "text"]


def _core_type(name: str) -> Any:
    """The knob's annotation without `| None` (optional knobs default to None)."""
    annotation = TrainingParams.model_fields[name].annotation
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def kind(name: str) -> KnobKind:
    core = _core_type(name)
    if get_origin(core) is Literal:
        return "choice"
    if core is int:
        return "int"
    if core is float:
        return "float"
    return "text"


def is_numeric(name: str) -> bool:
    return kind(name) in ("int", "float")


def choices(name: str) -> tuple[Any, ...]:
    core = _core_type(name)
    return get_args(core) if get_origin(core) is Literal else ()


def describe(name: str) -> str:
    """What a knob takes, in words: `an integer >= 1 and <= 96`, `one of 'plain', 'qa'`."""
    k = kind(name)
    if k == "choice":
        return "one of " + ", ".join(repr(c) for c in choices(name))
    words = {"int": "an integer", "float": "a number", "text": "a string"}[k]
    bounds = []
    for m in TrainingParams.model_fields[name].metadata:
        for cls, op, attr in ((Ge, ">=", "ge"), (Gt, ">", "gt"), (Le, "<=", "le"), (Lt, "<", "lt")):
            if isinstance(m, cls):
                bounds.append(f"{op} {getattr(m, attr)}")
    return words + (" " + " and ".join(bounds) if bounds else "")


@cache
def _adapter(name: str) -> TypeAdapter[Any]:
    field = TrainingParams.model_fields[name]
    typ: Any = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
    return TypeAdapter(typ)


def message(err: Mapping[str, Any]) -> str:
    """A pydantic error message as the rest of a sentence (`must be ...`)."""
    msg = str(err["msg"]).removeprefix("Value error, ")
    if msg.startswith("Input should be "):
        msg = "must be " + msg.removeprefix("Input should be ")
    return msg


def check_value(name: str, value: JSONScalar) -> tuple[JSONScalar | None, str | None]:
    """Validate one value of one knob on its own; returns (normalised value, problem)."""
    # pydantic's lax mode would take True as 1; a boolean for a non-boolean knob is a typo.
    if isinstance(value, bool):
        return None, f"{value!r} is a boolean; {name} takes {describe(name)}"
    try:
        normalised = _adapter(name).validate_python(value)
    except ValidationError as exc:
        return None, f"{value!r}: {message(exc.errors()[0])} ({name} takes {describe(name)})"
    return normalised, None


def resolve(params: Mapping[str, JSONScalar]) -> tuple[dict[str, JSONScalar] | None, list[str]]:
    """Validate a whole run's parameters; returns the resolved params (defaults filled in).

    Knobs left at None (d_ff, lora_rank, base_run) are left out: an event parameter is a
    scalar, and absent means "the trainer's default".
    """
    try:
        model = TrainingParams.model_validate(dict(params))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"{where}: {message(err)}" if where else message(err))
        return None, problems
    return model.model_dump(mode="json", exclude_none=True), []


def allowed() -> str:
    return ", ".join(TRAINING_KNOBS)
