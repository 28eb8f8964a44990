"""Bounded requests against the app under a real uvicorn and a real Neo4j: 413 for an over-long
URL, body or Cypher text; a query stopped in Neo4j when its time is up or its client goes."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import neo4j
import pytest
import uvicorn

from graph.transactions import gate_transactions, terminate_gate_transactions
from services.access.tokens import create_token
from services.api.app import create_app
from services.core.context import Context
from services.core.settings import ApiSettings

SLOW = "UNWIND range(1, 1000000000) AS x WITH x WHERE x = -1 RETURN count(*)"


class Served:
    """The app under uvicorn in a thread, a read and a write token, the session's Neo4j."""

    def __init__(self, settings: ApiSettings, home: Path, driver: neo4j.Driver) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.driver = driver
        self.read = {"Authorization": f"Bearer {create_token(home, 'reader', 'read')}"}
        self.write = {"Authorization": f"Bearer {create_token(home, 'writer', 'write')}"}
        self.server = uvicorn.Server(uvicorn.Config(create_app(Context(), settings), host="127.0.0.1",
                                                    port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def raw(self, request: bytes) -> socket.socket:
        """A connection that has sent `request` (the caller reads, or drops it)."""
        conn = socket.create_connection(("127.0.0.1", self.port))
        conn.sendall(request)
        return conn


@pytest.fixture
def serve(knobs_env: dict[str, str], neo4j_state: dict[str, Any]) -> Iterator[Callable[..., Served]]:
    """serve(**settings) starts the app with those ApiSettings; stopped after the test."""
    started: list[Served] = []
    driver = neo4j.GraphDatabase.driver(neo4j_state["uri"],
                                        auth=(neo4j_state["user"], neo4j_state["password"]))

    def start(**settings: Any) -> Served:
        served = Served(ApiSettings(**settings), Path(knobs_env["KNOBS_HOME"]), driver)
        served.thread.start()
        while not served.server.started:
            time.sleep(0.02)
        started.append(served)
        return served

    try:
        yield start
    finally:
        for served in started:
            served.server.should_exit = True
            served.thread.join(15)
        terminate_gate_transactions(driver)
        driver.close()


def post_json(path: str, body: dict[str, Any], headers: dict[str, str], port: int) -> bytes:
    data = json.dumps(body).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{head}\r\n").encode() + data


def until(check: Callable[[], bool], seconds: float) -> bool:
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        if check():
            return True
        time.sleep(0.05)
    return check()


def running_queries_longer_than(driver: neo4j.Driver, chars: int) -> int:
    records, _, _ = driver.execute_query(
        "SHOW TRANSACTIONS YIELD currentQuery WHERE size(currentQuery) > $chars RETURN count(*) AS n",
        {"chars": chars}, database_="system")
    return int(records[0]["n"])


def test_a_4_mb_query_is_refused_at_once_and_neo4j_never_sees_it(serve: Callable[..., Served]) -> None:
    # Given the app with its default limits
    app = serve()
    query = "MATCH (n) WHERE n.name IN [" + ",".join(["'aaaaaaaaaa'"] * 320_000) + "] RETURN n"
    assert len(query) > 4_000_000
    # When a reader posts the 4 MB query
    answer = httpx.post(f"{app.url}/v1/cypher", json={"query": query}, headers=app.read, timeout=60)
    # Then the answer is a 413 that names the limit and the setting, within a second (the contract)
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"] == "QueryTooLong"
    assert "over the limit of 65,536 (KNOBS_API_CYPHER_MAX_CHARS)" in answer.json()["detail"]
    assert answer.elapsed.total_seconds() < 1.0
    print(f"\n{len(query):,}-character query: {answer.status_code} in {answer.elapsed.total_seconds():.3f} s")
    # And Neo4j runs nothing of the gate's, nor any query that long
    assert gate_transactions(app.driver) == []
    assert running_queries_longer_than(app.driver, 65_536) == 0


def test_a_client_that_goes_away_has_its_query_stopped_in_neo4j(serve: Callable[..., Served]) -> None:
    # Given a slow query posted with a time limit far beyond this test's patience
    app = serve(cypher_timeout_s=120)
    conn = app.raw(post_json("/v1/cypher", {"query": SLOW}, app.read, app.port))
    try:
        # Then Neo4j runs it, tagged as the gate's
        assert until(lambda: len(gate_transactions(app.driver)) == 1, 15), "the query never started"
    finally:
        # When the client drops the connection
        conn.close()
    # Then the gate's transaction is gone from Neo4j within a few seconds, not after 120 s
    assert until(lambda: gate_transactions(app.driver) == [], 5), gate_transactions(app.driver)


def test_a_query_past_its_time_limit_answers_504_and_is_stopped(serve: Callable[..., Served]) -> None:
    # Given the app with a one-second Cypher time limit
    app = serve(cypher_timeout_s=1)
    # When a reader posts a query that would run for minutes
    answer = httpx.post(f"{app.url}/v1/cypher", json={"query": SLOW}, headers=app.read, timeout=60)
    # Then the answer is a 504 that names the limit, and nothing of it runs on in Neo4j
    assert answer.status_code == 504, answer.text
    assert answer.json()["error"] == "QueryTimedOut"
    assert "time limit of 1 s (planning included)" in answer.json()["detail"]
    assert until(lambda: gate_transactions(app.driver) == [], 5), gate_transactions(app.driver)
    # And a quick query still gets its answer
    ok = httpx.post(f"{app.url}/v1/cypher", json={"query": "RETURN 1 AS one"}, headers=app.read)
    assert ok.status_code == 200 and ok.json()["rows"] == [[1]], ok.text


def test_a_body_over_the_limit_is_refused_from_its_content_length(serve: Callable[..., Served]) -> None:
    # Given the app with a 10,000-byte body limit
    app = serve(max_body_bytes=10_000)
    events = [{"type": "RunRecorded", "data": {"pad": "x" * 100}} for _ in range(200)]
    # When a writer posts a batch of about 30 KB
    answer = httpx.post(f"{app.url}/v1/events", json={"events": events}, headers=app.write)
    # Then it is refused with 413, naming the limit and its setting, and nothing was appended
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"] == "BodyTooLarge"
    assert "over the limit of 10,000 bytes (KNOBS_API_MAX_BODY_BYTES)" in answer.json()["detail"]
    log = httpx.get(f"{app.url}/v1/events", headers=app.read)
    assert log.status_code == 200 and log.json()["events"] == []


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(serve: Callable[..., Served]) -> None:
    # Given the app with a 10,000-byte body limit
    app = serve(max_body_bytes=10_000)
    head = (f"POST /v1/cypher HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\nAuthorization: {app.read['Authorization']}\r\n\r\n").encode()
    conn = app.raw(head)
    conn.settimeout(10)
    try:
        # When a body without a length streams in chunks of 4 KB, far past the limit
        chunk = b'{"query": "RETURN 1", "pad": "' + b"x" * 4066
        sent = 0
        reply = b""
        for _ in range(250):  # up to 1 MB
            try:
                conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
            except OSError:
                break  # the server closed the connection after answering
            conn.settimeout(0.05)
            with contextlib.suppress(TimeoutError):
                reply += conn.recv(65536)
            if b"\r\n\r\n" in reply:
                break
        conn.settimeout(10)
        while b"}" not in reply:
            more = conn.recv(65536)
            if not more:
                break
            reply += more
    finally:
        conn.close()
    # Then the server answered 413 before the client had sent much past the limit
    status, _, rest = reply.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413"), reply[:500]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["error"] == "BodyTooLarge" and "KNOBS_API_MAX_BODY_BYTES" in body["detail"]
    assert sent < 100_000


def test_an_over_long_url_is_refused(serve: Callable[..., Served]) -> None:
    # Given the app with a 1,000-character URL limit
    app = serve(max_url_chars=1000)
    # When a reader asks with a 2,000-character query string
    answer = httpx.get(f"{app.url}/v1/rankings", params={"experiment": "x" * 2000}, headers=app.read)
    # Then it is refused with 413, naming the limit and its setting
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"] == "UrlTooLong"
    assert "KNOBS_API_MAX_URL_CHARS" in answer.json()["detail"]
    # And a URL within the limit is served
    assert httpx.get(f"{app.url}/v1/rankings", headers=app.read).status_code == 200


def test_the_neo4j_knobs_starts_has_a_transaction_timeout_backstop(neo4j_state: dict[str, Any]) -> None:
    # Given the Neo4j that services.infra.neo4j started for this session
    auth = (neo4j_state["user"], neo4j_state["password"])
    with neo4j.GraphDatabase.driver(neo4j_state["uri"], auth=auth) as d:
        records, _, _ = d.execute_query(
            "SHOW SETTINGS YIELD name, value WHERE name = 'db.transaction.timeout' RETURN value")
    # Then a transaction that sets no timeout of its own is stopped after ten minutes
    assert [r["value"] for r in records] == ["10m"]


def test_headers_over_the_limit_are_refused(serve: Callable[..., Served]) -> None:
    # Given the app with its default 16 KiB header limit (uvicorn's h11 lets 20 KB sent at once through)
    app = serve()
    # When a request carries 20 KB of headers
    answer = httpx.get(f"{app.url}/v1/rankings", headers={**app.read, "X-Pad": "x" * 20_000})
    # Then it is refused with 413, naming the limit and its setting; below it, the app answers
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"] == "HeadersTooLarge"
    assert "KNOBS_API_MAX_HEADER_BYTES" in answer.json()["detail"]
    assert httpx.get(f"{app.url}/v1/rankings", headers={**app.read, "X-Pad": "x" * 8_000}).status_code == 200
