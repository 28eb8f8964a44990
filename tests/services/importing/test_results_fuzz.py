"""Hostile results files (CSV and JSONL) against `knobs import results`: each either imports or
is refused with BadInput that says what is wrong, and a refused file appends nothing."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.core.context import Context
from services.core.errors import BadInput
from services.importing.results import import_results
from tests.faults import count, faults
from tests.mutations import hostile_files, jsonl_dump, jsonl_load

BUNDLED = Path(__file__).resolve().parents[3] / "services" / "data" / "vaswani2017_table3.csv"
CSV_EXAMPLE = b"\n".join(BUNDLED.read_bytes().splitlines()[:4]) + b"\n"
FUZZ = settings(max_examples=count(60, 2000), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def csv_load(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def csv_dump(tree: Any) -> bytes:
    if not isinstance(tree, list) or not all(isinstance(row, dict) for row in tree):
        return json.dumps(tree, default=str).encode()  # no longer a table: the parser must say so
    header = list(dict.fromkeys(str(k) for row in tree for k in row))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in tree:
        cells = {str(k): v for k, v in row.items()}
        writer.writerow(["" if cells.get(h) is None else cells[h] for h in header])
    return out.getvalue().encode("utf-8", "surrogatepass")


JSONL_EXAMPLE = jsonl_dump(csv_load(CSV_EXAMPLE)) + b'\n{"run": "nested", "params": {"lr": 0.1}, ' \
    b'"scores": {"acc": 0.5}, "stderrs": {"acc": 0.01}, "n.acc": 100, "seed": 3}\n'


def imports_or_refuses_cleanly(ctx: Context, path: Path, data: bytes) -> None:
    path.write_bytes(data)
    before = ctx.store().head()
    try:
        import_results(ctx, path, "fuzz")
    except BadInput as exc:
        assert str(exc).strip(), "a refusal must say what is wrong"
        assert ctx.store().head() == before, f"a refused file appended events: {exc}"


FILES = {"runs.csv": hostile_files([CSV_EXAMPLE], csv_load, csv_dump),
         "runs.jsonl": hostile_files([JSONL_EXAMPLE], jsonl_load, jsonl_dump)}


@faults
@pytest.mark.parametrize("name", list(FILES))
@FUZZ
@given(draw=st.data())
def test_a_hostile_results_file_imports_or_is_refused_without_writing(ctx: Context, tmp_path: Path,
                                                                      name: str, draw: st.DataObject) -> None:
    # Given a mutated CSV or JSONL results file (or random bytes)
    data = draw.draw(FILES[name], label=name)
    # When it is imported into a log
    # Then it imports, or BadInput says why and the log's last position has not moved
    imports_or_refuses_cleanly(ctx, tmp_path / name, data)
