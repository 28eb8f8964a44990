"""Fault row F6 through the API: on a full disk POST /v1/events answers 507 with what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.access.tokens import create_token
from services.api.app import create_app
from services.core.context import Context
from tests.conftest import fill
from tests.faults import faults


def cited(i: int) -> dict[str, object]:
    return {"type": "SourceCited", "data": {"source_id": f"s{i}", "citation": "x" * 2000}}


@faults
def test_appends_answer_507_on_a_full_disk_and_201_once_space_returns(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server whose KNOBS_HOME is a small disk, nearly full
    monkeypatch.setenv("KNOBS_HOME", str(small_disk))
    headers = {"Authorization": f"Bearer {create_token(small_disk, 'tests', 'write')}"}
    with TestClient(create_app(Context(small_disk))) as client:
        assert client.post("/v1/events", json={"events": [cited(0)]}, headers=headers).status_code == 201
        filler = fill(small_disk, leave=128 * 1024)
        # When events are appended until the disk is full
        answers = [client.post("/v1/events", json={"events": [cited(i) for i in range(3)]}, headers=headers)
                   for _ in range(100)]
        # Then the first failure is a 507 naming the disk and what to do, and no answer is a 500
        codes = [a.status_code for a in answers]
        assert set(codes) <= {201, 507}, codes
        full = answers[codes.index(507)].json()
        assert full["error"] == "StoreFull"
        assert f"the disk under {small_disk} is full" in full["detail"] and "Free space" in full["detail"]
        acknowledged = sum(len(a.json()["positions"]) for a in answers if a.status_code == 201) + 1
        # And once space returns the next append is acknowledged, after everything acknowledged
        filler.unlink()
        again = client.post("/v1/events", json={"events": [cited(7)]}, headers=headers)
        assert again.status_code == 201, again.text
        assert again.json()["positions"] == [acknowledged + 1]
