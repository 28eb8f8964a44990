"""The gate's transactions carry its tag, and graph/transactions.py finds and stops them in a real Neo4j."""

from __future__ import annotations

import threading
import time

import neo4j
import pytest

from graph.errors import QueryFailed
from graph.readonly import QueryTooLong, run_readonly
from graph.transactions import gate_transactions, terminate_gate_transactions

SLOW = "UNWIND range(1, 1000000000) AS x WITH x WHERE x = -1 RETURN count(*)"


def listed_within(driver: neo4j.Driver, request_id: str, seconds: float) -> list[str]:
    """The request's transactions, once one shows up (or [] after `seconds`)."""
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        ids = gate_transactions(driver, request_id)
        if ids:
            return ids
        time.sleep(0.05)
    return []


def test_a_running_gate_query_is_listed_by_its_request_and_terminated(graph: neo4j.Driver) -> None:
    # Given a slow read running through the gate under request id "r-1", with a long time limit
    failures: list[BaseException] = []

    def slow() -> None:
        try:
            run_readonly(graph, SLOW, timeout_s=60, request_id="r-1")
        except BaseException as exc:
            failures.append(exc)

    worker = threading.Thread(target=slow)
    worker.start()
    try:
        # Then Neo4j lists it under the gate's tag and that request, and under no other request
        ids = listed_within(graph, "r-1", seconds=10)
        assert len(ids) == 1, ids
        assert gate_transactions(graph, "r-2") == []
        assert gate_transactions(graph) == ids
        # When it is terminated by its request id
        assert terminate_gate_transactions(graph, "r-1") == 1
        worker.join(10)
        # Then the caller gets Neo4j's "terminated" and no transaction of the gate is left
        assert not worker.is_alive()
        [failure] = failures
        assert isinstance(failure, QueryFailed) and "Terminated" in str(failure)
        assert gate_transactions(graph) == []
        assert terminate_gate_transactions(graph, "r-1") == 0
    finally:
        terminate_gate_transactions(graph)
        worker.join(10)


def test_a_query_over_the_length_limit_never_reaches_neo4j() -> None:
    # Given a driver whose Neo4j does not exist, and a 4 MB query
    query = "RETURN '" + "x" * 4_000_000 + "'"
    with neo4j.GraphDatabase.driver("bolt://127.0.0.1:1", auth=("neo4j", "none")) as nowhere:
        # Then the gate refuses it by its length, naming the limit and the setting
        with pytest.raises(QueryTooLong, match=r"4,000,009 characters long, over the limit of 65,536 "
                                                r"\(KNOBS_API_CYPHER_MAX_CHARS\)"):
            run_readonly(nowhere, query)
        with pytest.raises(QueryTooLong, match="over the limit of 100"):
            run_readonly(nowhere, "RETURN " + "1 + " * 30 + "1", max_chars=100)
