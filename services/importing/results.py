"""`knobs import results`: a CSV or JSONL table of runs becomes events, all or nothing.

One row per run: `run` (id), optional `citation` and `seed`, `param.<name>`,
`score.<benchmark>`, optional `stderr.<benchmark>`, `n.<benchmark>` and `cost.<kind>`.
JSONL rows may use the same flat keys or nested `params`/`scores`/`costs` objects.
Event ids and idempotency keys are derived from the content, so importing the same file
twice stores nothing new, while a corrected value is recorded as a new fact.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from events.canonical import unstorable
from services.core.context import Context
from services.core.errors import BadInput
from services.importing import batch
from services.importing.batch import (
    ImportPlan,
    ParsedRun,
    Source,
    check_experiment,
    finite_number,
    integer_seed,
    param_value,
    refuse,
    run_events,
    source_id_for,
)

PREFIXES = ("param.", "score.", "stderr.", "n.", "cost.")
PLAIN = ("run", "citation", "seed")
ALLOWED_COLUMNS = (
    "allowed: run, citation, seed, param.<name>, score.<benchmark>, stderr.<benchmark>, "
    "n.<benchmark>, cost.<kind>"
)


def import_results(ctx: Context, path: Path, experiment: str) -> batch.ImportOutcome:
    """The same outcome as `knobs import lm-eval|mlflow|optuna` (origin "results", nothing skipped)."""
    return batch.append_plan(ctx, plan_import(path, experiment))


def _known_column(key: str) -> bool:
    return key in PLAIN or any(key.startswith(p) and len(key) > len(p) for p in PREFIXES)


def plan_import(path: Path, experiment: str, agent: str = "knobs-import") -> ImportPlan:
    """Parse and validate a whole file into events; raise BadInput listing every problem.

    The experiment name is kept as typed (the adapters trim theirs): trimming it here would
    change the keys of runs imported before, and re-importing them would store them again.
    """
    check_experiment(experiment)
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix in (".jsonl", ".ndjson"):
        rows = _jsonl_rows(path)
    else:
        raise BadInput(f"{path}: unsupported file type {suffix!r}; use .csv or .jsonl")
    errors: list[str] = []
    runs = list(_parse_rows(rows, errors))
    if not runs and not errors:
        errors.append("the file has no rows")
    refuse(str(path), errors)
    sources = {run.run_id: Source(source_id_for(run.citation), run.citation) for run in runs if run.citation}
    return ImportPlan(experiment, "results", runs, sources, run_events(experiment, runs, sources, agent))


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise BadInput(f"{path}: the file is empty; expected a header row starting with `run`")
            header = [h.strip() for h in header]
            unknown = [h for h in header if not _known_column(h)]
            if unknown:
                raise BadInput(
                    f"{path}: unknown column(s) {unknown}; {ALLOWED_COLUMNS}; nothing was imported"
                )
            if len(set(header)) != len(header):
                dupes = sorted({h for h in header if header.count(h) > 1})
                raise BadInput(f"{path}: duplicate column(s) {dupes} in the header")
            for line, cells in enumerate(reader, start=2):
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) != len(header):
                    yield line, {"__error__": f"has {len(cells)} cells, the header has {len(header)}"}
                    continue
                yield line, {h: c.strip() for h, c in zip(header, cells, strict=True)}
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text ({exc}); save the file as UTF-8") from exc


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text ({exc}); save the file as UTF-8") from exc
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield line, {"__error__": f"is not valid JSON ({exc.msg} at column {exc.colno})"}
            continue
        if not isinstance(obj, dict):
            yield line, {"__error__": "must be a JSON object, one run per line"}
            continue
        problem = unstorable(obj, "the row")  # JSON may escape what is not text ("\ud800")
        if problem:
            yield line, {"__error__": f"cannot be stored: {problem}"}
            continue
        yield line, _flatten(obj)


def _flatten(obj: dict[str, Any]) -> dict[str, Any]:
    """Accept nested `params`/`scores`/`costs`/`stderrs` objects beside flat keys."""
    flat: dict[str, Any] = {}
    nested = {"params": "param.", "scores": "score.", "costs": "cost.", "stderrs": "stderr."}
    for key, value in obj.items():
        if key in nested and isinstance(value, dict):
            for inner, v in value.items():
                flat[nested[key] + str(inner)] = v
        else:
            flat[key] = value
    return flat


def _parse_rows(rows: Iterable[tuple[int, dict[str, Any]]], errors: list[str]) -> Iterator[ParsedRun]:
    seen: dict[str, int] = {}
    for line, row in rows:
        if "__error__" in row:
            errors.append(f"line {line}: {row['__error__']}")
            continue
        run_id = str(row.get("run") or "").strip()
        if run_id in seen:
            errors.append(f"line {line}: run {run_id!r} already appears on line {seen[run_id]}")
        elif run_id:
            seen[run_id] = line
        run = _parse_row(line, row, errors)
        if run is not None:
            yield run


def _parse_row(line: int, row: dict[str, Any], errors: list[str]) -> ParsedRun | None:
    before = len(errors)

    def bad(msg: str) -> None:
        errors.append(f"line {line}: {msg}")

    run_id = row.get("run")
    if run_id is None or str(run_id).strip() == "":
        bad("missing `run` (every row needs a run id)")
        return None
    run = ParsedRun(line=line, run_id=str(run_id).strip())
    for key, raw in row.items():
        if key == "run":
            continue
        if key == "citation":
            run.citation = str(raw).strip() or None if raw is not None else None
        elif key == "seed":
            if raw is None or raw == "":
                continue
            seed = integer_seed(raw)
            if seed is None:
                bad(f"seed {raw!r} is not an integer")
            else:
                run.seed = seed
        elif not _known_column(key):
            bad(f"unknown column {key!r}; {ALLOWED_COLUMNS}")
        else:
            _parse_prefixed(key, raw, run, bad)
    for bench in list(run.stderrs) + list(run.ns):
        if bench not in run.scores:
            bad(f"stderr/n given for {bench!r} without a score.{bench}")
    return run if len(errors) == before else None


def _parse_prefixed(key: str, raw: Any, run: ParsedRun, bad: Any) -> None:
    kind, _, name = key.partition(".")
    if kind == "param":
        value = param_value(raw)
        if value is None:
            bad(f"{key} is empty; every run needs a value for every parameter column "
                "(write the baseline's value where the run kept it)")
        else:
            run.params[name] = value
        return
    if raw is None or raw == "":
        return  # a run without this score, error or cost
    number = finite_number(raw)
    if number is None:
        bad(f"{key} {raw!r} is not a finite number")
    elif kind == "score":
        run.scores[name] = number
    elif kind == "stderr":
        if number < 0:
            bad(f"{key} {raw!r} must not be negative")
        else:
            run.stderrs[name] = number
    elif kind == "n":
        if not number.is_integer() or number < 1:
            bad(f"{key} {raw!r} must be a positive integer (the number of examples scored)")
        else:
            run.ns[name] = int(number)
    elif kind == "cost":
        if number < 0:
            bad(f"{key} {raw!r} must not be negative")
        else:
            run.costs[name] = number
