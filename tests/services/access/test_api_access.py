"""Who may do what over HTTP, against a real store and Neo4j: scopes, expiry, revocation while
the server runs, rate limits, throttled guessing, no tokens in URLs, and the dashboard's cookie
held to the same rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.access.tokens import create_token, list_tokens, now, path_of, revoke
from services.api.app import create_app
from services.core.settings import ApiSettings
from services.web.auth import COOKIE

EVENTS = {"events": [{"type": "RunRecorded", "data": {"experiment": "acc", "run_id": "r1",
                                                      "params": {"lr": 0.1}}, "idempotency_key": "r1"}]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def home(knobs_env: dict[str, str]) -> Path:
    return Path(knobs_env["KNOBS_HOME"])


def serve(**settings: object) -> TestClient:
    return TestClient(create_app(settings=ApiSettings(**settings)))  # type: ignore[arg-type]


@pytest.fixture
def client(home: Path) -> Iterator[TestClient]:
    with serve() as c:
        yield c


def test_each_scope_may_do_its_own_and_no_more(client: TestClient, home: Path) -> None:
    read, append, admin = (create_token(home, s, s) for s in ("read", "append", "admin"))
    # A read token reads, and may neither append nor manage tokens
    assert client.get("/v1/events", headers=bearer(read)).status_code == 200
    refused = client.post("/v1/events", json=EVENTS, headers=bearer(read))
    assert refused.status_code == 403 and "scope append" in refused.json()["detail"]
    assert client.get("/v1/tokens", headers=bearer(read)).status_code == 403
    # An append token appends (events and rankings), and may not manage tokens
    assert client.post("/v1/events", json=EVENTS, headers=bearer(append)).status_code == 201
    denied = client.get("/v1/tokens", headers=bearer(append))
    assert denied.status_code == 403 and "scope admin" in denied.json()["detail"]
    # An admin token lists the tokens (never a hash or a secret) and revokes one
    listed = client.get("/v1/tokens", headers=bearer(admin))
    assert listed.status_code == 200 and {t["scope"] for t in listed.json()} == {"read", "append", "admin"}
    assert "sha256" not in listed.text and read not in listed.text
    assert all(t["last_used"] for t in listed.json())  # each was used above, and the first use is written
    read_id = next(t["id"] for t in listed.json() if t["scope"] == "read")
    assert client.post(f"/v1/tokens/{read_id}/revoke", headers=bearer(admin)).json()["revoked"]
    assert client.post("/v1/events", json=EVENTS, headers=bearer(admin)).status_code == 201
    gone = client.get("/v1/events", headers=bearer(read))
    assert gone.status_code == 401 and f"token {read_id} ('read') was revoked on" in gone.json()["detail"]


def test_deployment_tokens_from_the_environment(home: Path) -> None:
    with serve(token="deploy-admin-0123456789", read_token="deploy-read-0123456789") as c:
        assert c.get("/v1/tokens", headers=bearer("deploy-admin-0123456789")).status_code == 200
        assert c.get("/v1/events", headers=bearer("deploy-read-0123456789")).status_code == 200
        assert c.post("/v1/events", json=EVENTS, headers=bearer("deploy-read-0123456789")).status_code == 403


def test_expiry_and_revocation_apply_at_once_without_a_restart(client: TestClient, home: Path) -> None:
    soon = create_token(home, "soon", "read", expires_in=timedelta(hours=1))
    kept = create_token(home, "kept", "append")
    assert client.get("/v1/events", headers=bearer(soon)).status_code == 200
    # When the token file says it expired (as the clock would make it)
    raw = json.loads(path_of(home).read_text())
    past = (now() - timedelta(minutes=1)).isoformat(timespec="seconds")
    raw[0]["expires"] = past
    path_of(home).write_text(json.dumps(raw))
    # Then the running server refuses it with the date, and does not echo it
    expired = client.get("/v1/events", headers=bearer(soon))
    assert expired.status_code == 401
    assert f"expired on {past}; create a new one" in expired.json()["detail"] and soon not in expired.text
    # And `knobs token revoke` (the same function) is refused at the next request
    assert client.get("/v1/events", headers=bearer(kept)).status_code == 200
    revoke(home, "kept")
    assert "was revoked on" in client.get("/v1/events", headers=bearer(kept)).json()["detail"]


def test_a_token_over_its_rate_gets_429_with_retry_after(home: Path) -> None:
    with serve(rate_per_s=0.05, burst=3) as c:
        busy = create_token(home, "busy", "read")
        other = create_token(home, "other", "read")
        own = create_token(home, "own-limit", "read", rate_per_s=0.05, burst=1)
        assert [c.get("/v1/events", headers=bearer(busy)).status_code for _ in range(3)] == [200] * 3
        limited = c.get("/v1/events", headers=bearer(busy))
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert "limit of 0.05 requests per second (burst 3)" in limited.json()["detail"]
        # Another token has its own bucket; a token's own limit overrides the server's
        assert c.get("/v1/events", headers=bearer(other)).status_code == 200
        assert [c.get("/v1/events", headers=bearer(own)).status_code for _ in range(2)] == [200, 429]


def test_guessing_is_throttled_per_address(home: Path) -> None:
    with serve(failed_auth_per_s=0.01, failed_auth_burst=3) as c:
        valid = create_token(home, "valid", "read")
        guesses = [c.get("/v1/events", headers=bearer(f"knobs_guess{i}")).status_code for i in range(4)]
        assert guesses == [401, 401, 401, 429]
        # Then even a right token from that address waits: a 200 would tell a guesser it hit
        blocked = c.get("/v1/events", headers=bearer(valid))
        assert blocked.status_code == 429
        assert "failed token checks from testclient" in blocked.json()["detail"]
        # A request with no token at all is no guess: it is told how to authenticate
        assert c.get("/v1/events").status_code == 401


@pytest.mark.parametrize("query", ["token", "access_token", "api_key"])
def test_a_token_in_the_url_is_refused(client: TestClient, home: Path, query: str) -> None:
    token = create_token(home, "url", "read")
    resp = client.get(f"/v1/events?after=0&{query}={token}")
    assert resp.status_code == 400 and "Authorization: Bearer" in resp.json()["detail"]
    assert token not in resp.text
    assert client.get(f"/ui/?{query}={token}").status_code == 400


def test_the_dashboard_cookie_follows_the_same_rules(client: TestClient, home: Path) -> None:
    append = create_token(home, "browser", "append")
    client.cookies.set(COOKIE, append)
    # The cookie reads /v1 and pages, but never writes through /v1 (a forged cross-site write)
    assert client.get("/v1/events").status_code == 200
    assert client.get("/ui/", follow_redirects=False).status_code == 200
    forged = client.post("/v1/events", json=EVENTS)
    assert forged.status_code == 403 and "cookie only reads" in forged.json()["detail"]
    # When it is revoked, the page sends the browser to log in again, saying why
    revoke(home, "browser")
    page = client.get("/ui/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].endswith("&why=revoked")
    assert "was revoked" in client.get(page.headers["location"]).text
    assert append not in page.headers["location"]
    login = client.post("/ui/login", content=f"token={append}&next=/ui/",
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                        follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"].endswith("&why=revoked")
    # A crafted `why` shows no text of its own
    assert "evil" not in client.get("/ui/login?why=evil%20text").text
    assert [e.revoked is not None for e in list_tokens(home)] == [True]
