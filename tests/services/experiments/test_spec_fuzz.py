"""Hostile experiment specs against `knobs experiment declare`: each either declares or is
refused with the services' error that says what is wrong, and a refused spec appends nothing."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings

from services.core.context import Context
from services.core.errors import ServiceError
from services.experiments.service import declare
from tests.faults import count, faults
from tests.mutations import hostile_files, yaml_dump

SPECS = sorted((Path(__file__).resolve().parents[3] / "examples" / "specs").glob("*.yaml"))


@faults
@settings(max_examples=count(60, 2000), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# Found by the soak run: PyYAML raised OverflowError and ValueError on these escapes.
@example(data=b'name: "\\U99999999999"\n').via("soak")
@example(data=b'name: "\\U7fffffff"\n').via("soak")
@given(data=hostile_files([p.read_bytes() for p in SPECS], yaml.safe_load, yaml_dump))
def test_a_hostile_spec_declares_or_is_refused_without_writing(ctx: Context, tmp_path: Path,
                                                               data: bytes) -> None:
    # Given a mutated experiment spec (or random bytes)
    path = tmp_path / "spec.yaml"
    path.write_bytes(data)
    before = ctx.store().head()
    # When it is declared
    try:
        declare(ctx, path)
    # Then it declares, or the refusal says why and the log's last position has not moved
    except ServiceError as exc:
        assert str(exc).strip(), "a refusal must say what is wrong"
        assert ctx.store().head() == before, f"a refused spec appended events: {exc}"
