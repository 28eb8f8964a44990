"""Run a gated Cypher query in a worker thread while watching its HTTP client and the clock.

The query's Neo4j-side timeout stops most runaways, but Neo4j checks it only between steps of
the work: a query still being planned runs on past it. So the request watches too. When its
client disconnects, or the time limit and a grace have passed, it terminates the request's
tagged transactions through the project's own driver (graph/transactions.py) and answers at
once; a background task goes on terminating until the worker thread has let go, so that a
transaction opened a moment after the first sweep is stopped as well.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from graph.errors import GraphError
from graph.readonly import QueryTimedOut
from graph.transactions import terminate_gate_transactions
from services.core.errors import ServiceError

T = TypeVar("T")

POLL_S = 0.05
"""How often the client and the clock are looked at while the query runs."""
GRACE_S = 1.0
"""Past the time limit, how long Neo4j has to stop the query itself before we terminate it."""
SWEEP_S = 0.25

log = logging.getLogger("knobs.api")
_sweepers: set[asyncio.Task[None]] = set()  # kept referenced until done


class ClientGone(ServiceError):
    """The client disconnected while its query ran; the query was terminated in Neo4j."""

    status_code = 408


async def run_watched(request: Request, driver: Any, run: Callable[[str], T], timeout_s: float) -> T:
    """`run(request_id)` in a thread, its transactions tagged with request_id (see graph/readonly).

    Raises ClientGone when the client goes away, QueryTimedOut when `timeout_s` plus GRACE_S
    pass; in both cases the query has been terminated in Neo4j.
    """
    request_id = uuid.uuid4().hex
    work = asyncio.ensure_future(asyncio.to_thread(run, request_id))
    ends = time.monotonic() + timeout_s + GRACE_S
    while True:
        done, _ = await asyncio.wait({work}, timeout=POLL_S)
        if done:
            return work.result()
        if await request.is_disconnected():
            problem: ServiceError | GraphError = ClientGone(
                "the client disconnected before its query finished; the query was stopped in Neo4j"
            )
            break
        if time.monotonic() > ends:
            problem = QueryTimedOut(
                f"the query ran past its time limit of {timeout_s:g} s (planning included) and was "
                "stopped in Neo4j: narrow it (a LIMIT, a label, an indexed property) or ask for a "
                "longer timeout"
            )
            break
    sweeper = asyncio.create_task(_terminate_until_done(driver, request_id, work))
    _sweepers.add(sweeper)
    sweeper.add_done_callback(_sweepers.discard)
    raise problem


async def _terminate_until_done(driver: Any, request_id: str, work: asyncio.Future[Any]) -> None:
    """Terminate the request's transactions until its worker thread returns."""
    while not work.done():
        try:
            await asyncio.to_thread(terminate_gate_transactions, driver, request_id)
        except GraphError as exc:  # Neo4j gone: the query is gone with it
            log.warning("could not terminate the transactions of request %s: %s", request_id, exc)
        await asyncio.wait({work}, timeout=SWEEP_S)
    if not work.cancelled():
        work.exception()  # retrieved, so asyncio does not log it as never retrieved
