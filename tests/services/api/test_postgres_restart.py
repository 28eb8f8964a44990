"""Fault row F5: the PostgreSQL event store stopped and restarted under a running `knobs serve`.

While it is down appends answer 503 with Retry-After and a message that names PostgreSQL; when
it is back the same server appends again (its connection pool recovers), and nothing that was
acknowledged is lost."""

from __future__ import annotations

import time
from pathlib import Path

from events.store.postgres import PostgresEventStore
from services.access.tokens import create_token
from services.infra.postgres import start_postgres, stop_postgres
from tests.faults import count, faults, report
from tests.services.serving import AppendingClient, Served, knobs_env


@faults
def test_appends_answer_503_while_postgres_is_down_and_go_on_after(
    postgres_home: Path, tmp_path: Path
) -> None:
    # Given a server on a PostgreSQL event store of its own, and a client appending without pause
    url = str(start_postgres(postgres_home)["url"])
    home = tmp_path / "home"
    home.mkdir()
    headers = {"Authorization": f"Bearer {create_token(home, 'tests', 'write')}"}
    env = knobs_env(home, KNOBS_EVENTS_BACKEND="postgres", KNOBS_EVENTS_POSTGRES_URL=url)
    restarts = count(1, 5)
    try:
        with Served(env, home) as served:
            client = AppendingClient(served, headers).start()
            try:
                client.wait_for(0, 201, 5)
                for _ in range(restarts):
                    # When PostgreSQL stops mid-work
                    stopped = time.monotonic()
                    stop_postgres(postgres_home)
                    # Then appends answer 503
                    client.wait_for(stopped, 503, 2)
                    # And when it is started again, the same server appends again
                    restarted = time.monotonic()
                    assert str(start_postgres(postgres_home)["url"]) == url, "PostgreSQL moved"
                    client.wait_for(restarted, 201, 5)
            finally:
                client.stop()
        # Then every failure was a 503 with Retry-After and a message that says what to do
        failed = [a for a in client.answers if a.status != 201]
        assert {a.status for a in failed} == {503}, [(a.status, a.body) for a in failed]
        assert all(a.retry_after and int(a.retry_after) > 0 for a in failed)
        assert all("PostgreSQL" in a.body["detail"] and "knobs services up" in a.body["detail"]
                   for a in failed)
        # And nothing acknowledged is lost; the log is gapless and its chain verifies
        with PostgresEventStore(url) as store:
            rows = {r.event_id: r.position for r in store.iter_all()}
            assert sorted(rows.values()) == list(range(1, len(rows) + 1))
            assert store.verify().ok
        assert {e: rows.get(e) for e in client.acked} == client.acked
        report("F5", restarts=restarts, acknowledged=len(client.acked), answered_503=len(failed))
    finally:
        stop_postgres(postgres_home)
