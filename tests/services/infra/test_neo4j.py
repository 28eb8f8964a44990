"""Neo4j provisioned by the project: two homes side by side, loopback, auth, a 0600 password."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError

from services.infra import neo4j as provision
from services.infra import runtime


@pytest.mark.slow
def test_two_homes_run_side_by_side_and_stop(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    try:
        # Given two homes started one after the other
        a = provision.start_neo4j(first)
        b = provision.start_neo4j(second)
        # Then each has its own port, recorded in its home, and answers only its own password
        assert a["bolt_port"] != b["bolt_port"]
        assert runtime.read_state(first, "neo4j")["bolt_port"] == a["bolt_port"]  # type: ignore[index]
        with GraphDatabase.driver(a["uri"], auth=("neo4j", a["password"])) as driver:
            [record] = driver.execute_query("CALL dbms.components() YIELD versions, edition "
                                            "RETURN versions[0] AS v, edition AS e").records
            assert record["v"].startswith("5.26") and record["e"] == "community"
        with pytest.raises(AuthError), GraphDatabase.driver(a["uri"], auth=("neo4j", b["password"])) as d:
            d.verify_connectivity()
        # The secrets are the owner's only; the configuration keeps Neo4j on loopback
        for home in (first, second):
            assert stat.S_IMODE((home / "neo4j" / "password").stat().st_mode) == 0o600
            assert stat.S_IMODE((home / "run" / "neo4j.json").stat().st_mode) == 0o600
        conf = (first / "neo4j" / "neo4j.conf").read_text()
        assert "server.default_listen_address=127.0.0.1" in conf
        assert "dbms.security.allow_csv_import_from_file_urls=false" in conf
        assert "server.http.enabled=false" in conf
        # Starting again is a no-op
        assert provision.start_neo4j(first)["pid"] == a["pid"]
        assert provision.neo4j_status(first)["running"] is True
    finally:
        provision.stop_neo4j(first)
        provision.stop_neo4j(second)
    assert provision.neo4j_status(first) == {"running": False}
    assert not runtime.process_alive(a["pid"])


def test_install_is_cached() -> None:
    target = provision.install()
    assert (target / ".installed").read_text() == provision.NEO4J_VERSION
    assert any(p.name.startswith("neo4j-bolt-") for p in (target / "lib").iterdir())
