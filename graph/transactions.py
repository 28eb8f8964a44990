"""Find and stop the transactions the read-only gate opened, by the metadata it tags them with.

Run through the project's own driver (a user allowed to see and terminate transactions),
never through the gate, which refuses SHOW/TERMINATE TRANSACTIONS from callers.
"""

from __future__ import annotations

import neo4j

from graph.errors import translated
from graph.readonly import GATE_TAG

_TAGGED = (
    "SHOW TRANSACTIONS YIELD transactionId, metaData, database "
    "WHERE metaData.knobs = $tag AND ($request IS NULL OR metaData.request = $request) "
    "RETURN transactionId"
)


def gate_transactions(driver: neo4j.Driver, request_id: str | None = None) -> list[str]:
    """Ids of the open transactions the gate started (for one request, or for all)."""
    with translated("listing the gate's transactions"):
        records, _, _ = driver.execute_query(
            _TAGGED, {"tag": GATE_TAG, "request": request_id}, database_="system"
        )
    return [str(r["transactionId"]) for r in records]


def terminate_gate_transactions(driver: neo4j.Driver, request_id: str | None = None) -> int:
    """Terminate the gate's open transactions (one request's, or all); returns how many."""
    ids = gate_transactions(driver, request_id)
    if not ids:
        return 0
    with translated("terminating the gate's transactions"):
        records, _, _ = driver.execute_query(
            "TERMINATE TRANSACTIONS $ids YIELD transactionId, message RETURN transactionId, message",
            {"ids": ids}, database_="system",
        )
    # A transaction that ended between the two statements reports "not found": not counted.
    return sum(1 for r in records if "terminated" in str(r["message"]).lower())
