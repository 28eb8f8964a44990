"""Experiment specs: load a YAML spec and validate all of it, naming each problem by its key path.

A spec says what to vary (`factors`), around what (`base`), how (`design`), how often
(`seeds`), what to measure (`benchmarks`) and how many runs are allowed (`budget`). For
executor `train` every name and value is checked against `TrainingParams`, the contract the
workers train from; for `external` names are free. Defaults are resolved into the validated
spec, so its canonical JSON (and `spec_sha256`) pins down the design completely.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, TypeAdapter, ValidationError

from events.canonical import canonical_json
from events.models import RECORDED_IN_TRAINING, TRAINING_BENCHMARKS, TRAINING_KNOBS, JSONScalar
from events.models.experiments import Executor
from services.core.errors import BadInput
from services.experiments import knobs

Method = Literal["ofat", "grid", "morris", "sobol"]
Scale = Literal["linear", "log"]
GLOBAL_METHODS: tuple[str, ...] = ("morris", "sobol")
DEFAULT_MORRIS_LEVELS = 4
DEFAULT_RANGE_LEVELS = 3
DEFAULT_MAX_RUNS = 100
MAX_PROBLEMS_SHOWN = 30
# Names end up in stream ids (`run:<experiment>/<run_id>`) and in `base_run` references.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _scalar(value: Any) -> JSONScalar:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
    what = "nothing" if value is None else f"a {type(value).__name__}"
    raise ValueError(f"must be a number, string or boolean, not {what}")


# One check instead of pydantic's union, whose errors would name each member type.
Scalar = Annotated[JSONScalar, PlainValidator(_scalar)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DesignSpec(_Frozen):
    """How points are chosen; `n`, `levels`, `calc_second_order` only where the method uses them."""

    method: Method
    seed: int = Field(default=0, ge=0)
    n: int | None = Field(default=None, ge=1, description="morris: trajectories; sobol: base samples")
    levels: int | None = Field(default=None, ge=2, description="morris: grid levels per factor")
    calc_second_order: bool | None = Field(default=None, description="sobol only; default true")


class FactorSpec(_Frozen):
    """One varied parameter: either a list of `values` or a numeric `range`."""

    values: list[Scalar] | None = None
    range: list[float] | None = None
    scale: Scale | None = Field(default=None, description="range only: linear (default) or log")
    levels: int | None = Field(default=None, ge=2, description="range, ofat/grid: points (default 3)")
    integer: bool | None = Field(default=None, description="range: round samples to integers")

    @property
    def is_range(self) -> bool:
        return self.range is not None


class BudgetSpec(_Frozen):
    max_runs: int = Field(default=DEFAULT_MAX_RUNS, ge=1)


class ExperimentSpec(_Frozen):
    """A validated spec with its defaults resolved."""

    name: str
    description: str = ""
    executor: Executor
    design: DesignSpec
    base: dict[str, Scalar] = Field(default_factory=dict)
    factors: dict[str, FactorSpec]
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0])
    benchmarks: list[str]
    budget: BudgetSpec = Field(default_factory=BudgetSpec)

    def canonical(self) -> dict[str, Any]:
        """The JSON form that is stored in ExperimentDeclared and hashed."""
        return self.model_dump(mode="json", exclude_none=True)

    def sha256(self) -> str:
        return hashlib.sha256(canonical_json(self.canonical()).encode("utf-8")).hexdigest()


REQUIRED = {
    "name": "a short name for the experiment (letters, digits, '.', '_', '-')",
    "executor": "'train' (our workers run it) or 'external' (someone else runs it; results are imported)",
    "design": "{method: ofat | grid | morris | sobol, ...}",
    "factors": "the parameters to vary: {name: {values: [...]}} or {name: {range: [low, high]}}",
    "benchmarks": "the benchmarks every run is scored on",
}
_SECTION_MODELS: dict[str, type[BaseModel]] = {"design": DesignSpec, "budget": BudgetSpec}


# --- loading ------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2 floats (`1e-4` is a number) and duplicate keys refused."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base constructor reports it
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given on line {first + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


# PyYAML follows YAML 1.1, where `1e-4` (no dot) is a string; learning rates are written so.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(path: Path) -> Any:
    """The parsed document; BadInput for a missing file, bad YAML or an empty file."""
    if not path.exists():
        raise BadInput(f"{path}: no such file; give the path of a YAML experiment spec")
    if path.is_dir():
        raise BadInput(f"{path}: is a directory; give the path of a YAML experiment spec")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text ({exc}); save the spec as UTF-8") from exc
    try:
        doc = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise BadInput(f"{path}: not valid YAML{where}: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise BadInput(f"{path}: not valid YAML: {exc}") from exc
    except (ValueError, OverflowError) as exc:  # PyYAML's own crash on an escape like "\U99999999"
        raise BadInput(f"{path}: not valid YAML: an escape names no character ({exc})") from exc
    if doc is None:
        raise BadInput(f"{path}: the file is empty; a spec is a mapping with "
                       f"{', '.join(REQUIRED)} (see examples/specs/)")
    return doc


def load_spec(path: Path) -> ExperimentSpec:
    """Read and validate a spec file; BadInput lists every problem found."""
    return validate_spec(read_yaml(path), source=str(path))


# --- validation ---------------------------------------------------------------------------


def _path(prefix: str, loc: tuple[Any, ...]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _pydantic_problems(exc: ValidationError, prefix: str, model: type[BaseModel] | None) -> list[str]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = _path(prefix, loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            allowed = ", ".join(model.model_fields) if model is not None and len(loc) == 1 else None
            out.append(f"{path}: unknown key" + (f"; allowed: {allowed}" if allowed else ""))
        elif kind == "missing":
            out.append(f"{path}: required")
        elif kind in ("dict_type", "model_type"):
            out.append(f"{path}: must be a mapping (key: value), got {_got(err['input'])}")
        elif kind == "list_type":
            out.append(f"{path}: must be a list, got {_got(err['input'])}")
        else:
            out.append(f"{path}: {knobs.message(err)} (got {_got(err['input'])})")
    return out


def _section(name: str, raw: Any, problems: list[str]) -> Any:
    """Validate one top-level section on its own, so one bad section hides no other problem."""
    model = _SECTION_MODELS.get(name)
    field = ExperimentSpec.model_fields[name]
    typ: Any = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
    adapter: TypeAdapter[Any] = TypeAdapter(typ)
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, name, model))
        return None


def validate_spec(raw: Any, source: str = "spec") -> ExperimentSpec:
    """Validate a parsed spec; raise BadInput naming every problem with its key path."""
    if not isinstance(raw, dict):
        raise BadInput(f"{source}: a spec must be a YAML mapping ({', '.join(REQUIRED)}, ...), "
                       f"not a {type(raw).__name__}")
    if raw.get("kind") == "repetition":
        raise BadInput(f"{source}: a repetition spec (kind: repetition); run it with `knobs repetition run "
                       f"{source}`")
    problems: list[str] = []
    fields = ExperimentSpec.model_fields
    for key in raw:
        if key not in fields:
            problems.append(f"{key}: unknown key; allowed: {', '.join(fields)}")
    for key, hint in REQUIRED.items():
        if key not in raw:
            problems.append(f"{key}: required: {hint}")
    parts: dict[str, Any] = {}
    for key in fields:
        if key in raw and key != "factors":
            parts[key] = _section(key, raw[key], problems)
    factors = _factor_sections(raw.get("factors"), problems) if "factors" in raw else None
    resolved = _check(parts, factors, problems)
    if problems:
        raise BadInput(report(source, problems))
    try:
        return ExperimentSpec.model_validate(resolved)
    except ValidationError as exc:  # a bug in _check rather than in the spec, but say what
        raise BadInput(report(source, _pydantic_problems(exc, "", ExperimentSpec))) from exc


def report(source: str, problems: list[str]) -> str:
    shown = "\n  ".join(problems[:MAX_PROBLEMS_SHOWN])
    more = len(problems) - MAX_PROBLEMS_SHOWN
    tail = f"\n  ... and {more} more" if more > 0 else ""
    return f"{source}: {len(problems)} problem(s) in the spec:\n  {shown}{tail}"


def _factor_sections(raw: Any, problems: list[str]) -> dict[str, FactorSpec] | None:
    if not isinstance(raw, dict):
        problems.append(f"factors: {REQUIRED['factors']}; got {_got(raw)}")
        return None
    if not raw:
        problems.append(f"factors: at least one factor is needed: {REQUIRED['factors']}")
        return None
    # The factors that parse are returned even when others do not, so their own problems
    # (unknown knob, bad value) are reported in the same pass.
    out: dict[str, FactorSpec] = {}
    for name, body in raw.items():
        if not isinstance(name, str) or not name.strip():
            problems.append(f"factors: parameter names must be non-empty strings, got {_got(name)}")
            continue
        try:
            out[name] = FactorSpec.model_validate(body)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(exc, f"factors.{name}", FactorSpec))
    return out


def _check(parts: dict[str, Any], factors: dict[str, FactorSpec] | None,
           problems: list[str]) -> dict[str, Any]:
    """Cross-field rules on the sections that parsed; returns the spec with defaults resolved."""
    name, executor = parts.get("name"), parts.get("executor")
    design: DesignSpec | None = parts.get("design")
    base: dict[str, JSONScalar] | None = parts.get("base", {})
    if isinstance(name, str) and not NAME_RE.match(name):
        problems.append(f"name: {name!r} is not a usable name: 1-100 letters, digits, '.', '_' or "
                        "'-', starting with a letter or digit (it becomes part of stream and run ids)")
    train = executor == "train"
    if train and base is not None:
        base = _check_train_base(base, problems)
    if factors is not None:
        factors = {n: _check_factor(n, f, executor, base, design, problems) for n, f in factors.items()}
    if design is not None:
        design = _check_design(design, factors, problems)
    _check_seeds(parts.get("seeds"), problems)
    _check_benchmarks(parts.get("benchmarks"), executor, problems)
    if train and base is not None:
        _check_recorded(parts.get("benchmarks"), base, factors, problems)
    resolved = {k: v for k, v in parts.items() if v is not None}
    resolved.update(base=base, factors=factors, design=design)
    return resolved


def _check_train_base(base: dict[str, JSONScalar], problems: list[str]) -> dict[str, JSONScalar] | None:
    normalised: dict[str, JSONScalar] = {}
    ok = True
    for key, value in base.items():
        if key not in TRAINING_KNOBS:
            hint = "; seeds go in `seeds`" if key == "seed" else ""
            problems.append(f"base.{key}: not a training knob{hint}; allowed: {knobs.allowed()}")
            ok = False
            continue
        value_ok, problem = knobs.check_value(key, value)
        if problem is not None:
            problems.append(f"base.{key}: {problem}")
            ok = False
        else:
            assert value_ok is not None
            normalised[key] = value_ok
    if not ok:
        return None
    _, errors = knobs.resolve(normalised)
    problems.extend(f"base: {e}" for e in errors)
    return normalised if not errors else None


def _check_factor(name: str, f: FactorSpec, executor: str | None, base: dict[str, JSONScalar] | None,
                  design: DesignSpec | None, problems: list[str]) -> FactorSpec:
    at = f"factors.{name}"
    before = len(problems)
    train = executor == "train"
    if train and name not in TRAINING_KNOBS:
        hint = "; seeds go in `seeds`" if name == "seed" else ""
        problems.append(f"{at}: not a training knob{hint}; allowed: {knobs.allowed()}")
        return f
    if (f.values is None) == (f.range is None):
        problems.append(f"{at}: give exactly one of `values: [...]` or `range: [low, high]`")
        return f
    if (design is not None and design.method == "ofat" and executor == "external"
            and base is not None and name not in base):
        problems.append(f"{at}: ofat varies one parameter away from its base value: add base.{name} "
                        "(an external executor has no defaults to fall back on)")
    if f.values is not None:
        for flag in ("scale", "levels", "integer"):
            if getattr(f, flag) is not None:
                problems.append(f"{at}.{flag}: only `range` factors take {flag}; a `values` factor "
                                "lists its values")
        return _check_values(at, name, f, f.values, train, problems)
    assert f.range is not None
    return _check_range(at, name, f, f.range, train, problems, before)


def _check_values(at: str, name: str, f: FactorSpec, values: list[JSONScalar], train: bool,
                  problems: list[str]) -> FactorSpec:
    if not values:
        problems.append(f"{at}.values: must list at least one value")
        return f
    normalised: list[JSONScalar] = []
    for i, v in enumerate(values):
        if train:
            value_ok, problem = knobs.check_value(name, v)
            if problem is not None:
                problems.append(f"{at}.values[{i}]: {problem}")
                continue
            assert value_ok is not None
            v = value_ok
        # 1 and 1.0 (and True) are equal in Python; compare as JSON so their types count too.
        if any(canonical_json(v) == canonical_json(seen) for seen in normalised):
            problems.append(f"{at}.values[{i}]: {v!r} is listed twice")
            continue
        normalised.append(v)
    return f.model_copy(update={"values": normalised})


def _check_range(at: str, name: str, f: FactorSpec, bounds: list[float], train: bool,
                 problems: list[str], before: int) -> FactorSpec:
    if train and not knobs.is_numeric(name):
        takes = knobs.describe(name)
        problems.append(f"{at}.range: {name} is not numeric ({takes}); list its values instead: "
                        f"`values: [...]`")
        return f
    if len(bounds) != 2:
        problems.append(f"{at}.range: must be [low, high], got {len(bounds)} number(s)")
        return f
    lo, hi = bounds
    if not all(math.isfinite(b) for b in bounds):
        problems.append(f"{at}.range: bounds must be finite numbers")
        return f
    if not lo < hi:
        problems.append(f"{at}.range: the low bound must be below the high one, got [{lo:g}, {hi:g}]")
    scale = f.scale or "linear"
    if scale == "log" and lo <= 0:
        problems.append(f"{at}.range: `scale: log` needs positive bounds, got [{lo:g}, {hi:g}]; "
                        "use `scale: linear` or a positive low bound")
    integer = bool(f.integer)
    if train:
        knob_int = knobs.kind(name) == "int"
        if f.integer is not None and f.integer != knob_int:
            problems.append(f"{at}.integer: {name} is {'an integer' if knob_int else 'a real'} knob; "
                            "leave `integer` out for train experiments (it follows the knob)")
        integer = knob_int
    if integer and not all(float(b).is_integer() for b in bounds):
        problems.append(f"{at}.range: {name} takes integers; give integer bounds, got [{lo:g}, {hi:g}]")
    elif train:
        for b in bounds:
            _, problem = knobs.check_value(name, int(b) if integer else b)
            if problem is not None:
                problems.append(f"{at}.range: {problem}")
    if len(problems) > before:
        return f
    return f.model_copy(update={"scale": scale, "integer": integer,
                                "levels": f.levels or DEFAULT_RANGE_LEVELS})


def _check_design(d: DesignSpec, factors: dict[str, FactorSpec] | None,
                  problems: list[str]) -> DesignSpec:
    before = len(problems)
    update: dict[str, Any] = {}
    if d.method in GLOBAL_METHODS:
        if d.n is None:
            what = "trajectories" if d.method == "morris" else "base samples (a power of two)"
            problems.append(f"design.n: required for {d.method}: the number of {what}")
    elif d.n is not None:
        problems.append(f"design.n: only morris and sobol take n; {d.method} runs every listed value")
    if d.method == "morris":
        levels = d.levels or DEFAULT_MORRIS_LEVELS
        if levels % 2:
            problems.append(f"design.levels: Morris needs an even number of levels (SALib's grid is "
                            f"biased otherwise), got {levels}; try {levels + 1}")
        for name, f in (factors or {}).items():
            if f.values is not None and len(f.values) > levels:
                problems.append(f"factors.{name}.values: {len(f.values)} values but Morris samples only "
                                f"design.levels = {levels} points per factor, so some values would "
                                f"never run; raise design.levels to {len(f.values) + len(f.values) % 2}")
        update["levels"] = levels
    elif d.levels is not None:
        problems.append("design.levels: only morris takes levels; for ofat and grid give "
                        "`levels` on a range factor")
    if d.method == "sobol":
        if d.n is not None and d.n & (d.n - 1):
            lower = 1 << (d.n.bit_length() - 1)
            problems.append(f"design.n: sobol needs a power of two (the Sobol' sequence is balanced "
                            f"only then), got {d.n}; try {lower} or {lower * 2}")
        update["calc_second_order"] = True if d.calc_second_order is None else d.calc_second_order
    elif d.calc_second_order is not None:
        problems.append("design.calc_second_order: only sobol takes calc_second_order")
    return d if len(problems) > before else d.model_copy(update=update)


def _check_seeds(seeds: list[int] | None, problems: list[str]) -> None:
    if seeds is None:
        return
    if not seeds:
        problems.append("seeds: must list at least one seed, e.g. [0]")
    dupes = sorted({s for s in seeds if seeds.count(s) > 1})
    if dupes:
        problems.append(f"seeds: {dupes} listed more than once")


def _check_benchmarks(benchmarks: list[str] | None, executor: str | None, problems: list[str]) -> None:
    if benchmarks is None:
        return
    if not benchmarks:
        problems.append("benchmarks: must list at least one benchmark")
    dupes = sorted({b for b in benchmarks if benchmarks.count(b) > 1})
    if dupes:
        problems.append(f"benchmarks: {dupes} listed more than once")
    for i, b in enumerate(benchmarks):
        if not b.strip():
            problems.append(f"benchmarks[{i}]: must not be empty")
        elif executor == "train" and b not in TRAINING_BENCHMARKS:
            problems.append(f"benchmarks[{i}]: {b!r} is not a benchmark the trainer knows; allowed: "
                            f"{', '.join(TRAINING_BENCHMARKS)} (or use executor: external)")


def _check_recorded(benchmarks: list[str] | None, base: dict[str, JSONScalar],
                    factors: dict[str, FactorSpec] | None, problems: list[str]) -> None:
    """Benchmarks recorded during training need the recording on in every run; without it the
    trainer would report them unavailable in every run, so say so before anything is trained."""
    if "influence_every" in base or (factors and "influence_every" in factors):
        return
    for i, b in enumerate(benchmarks or []):
        if b in RECORDED_IN_TRAINING:
            problems.append(f"benchmarks[{i}]: {b!r} is recorded during training; set base.influence_every "
                            "(record every N optimizer steps), e.g. influence_every: 10")
