"""The demo's distillation step as `make demo` runs it: the local LLM started for the home,
biography facts through four lenses, then the same calls judged more strictly from the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.settings import EventsSettings
from events.store.factory import open_store
from services.cli.demo import distil_facts
from services.core.context import Context
from services.infra.llm import stop_llm

pytestmark = pytest.mark.slow


def test_the_demo_distils_then_reruns_from_the_cache(knobs_env: dict[str, str],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    home = Path(knobs_env["KNOBS_HOME"])
    try:
        with Context(home) as ctx:
            distil_facts(ctx)
    finally:
        stop_llm(home)
    out = capsys.readouterr().out
    assert "32 distillates" in out and "cloud:" in out and "Vendi" in out
    assert ", from cache 0," in out and "requests 0, from cache 32" in out
    with open_store(EventsSettings(sqlite_path=home / "events.sqlite3")) as store:
        completed = store.read_all(types=["DistillationCompleted"])
    assert [e.data["requests"] >= 32 for e in completed] == [True, False]
    assert [e.data["cached"] for e in completed] == [0, 32]
