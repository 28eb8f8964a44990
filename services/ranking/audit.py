"""`knobs audit`: the provenance of a ranking, down to the events and citations it rests on.

The log is the authority: the RankingDerived event names its evidence by position and id,
each event's hash is checked against the chain, and each run leads to its citation. The
graph's links from the ranking node are compared with that list, so a stale or tampered
graph shows up as a disagreement.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from events.models import RankingDerived
from events.store import EventStore, StoredEvent, VerifyReport
from services.core.context import Context
from services.core.errors import NotFound
from services.queries.named import run_named


def audit(ctx: Context, ranking_id: str) -> dict[str, Any]:
    store = ctx.store()
    stream = store.read_stream(f"ranking:{ranking_id}")
    if not stream:
        raise NotFound(
            f"no ranking {ranking_id!r} in the log; list rankings with "
            "`knobs events --type RankingDerived`"
        )
    stored_ranking = stream[-1]
    ranking = stored_ranking.decode()
    assert isinstance(ranking, RankingDerived)
    wanted = {u.position: u.event_id for u in ranking.used_events}
    found = {e.position: e for e in store.read_positions(sorted(wanted))}
    problems = [
        f"position {pos}: expected event {eid}, "
        + (f"found {found[pos].event_id}" if pos in found else "found nothing")
        for pos, eid in sorted(wanted.items())
        if pos not in found or found[pos].event_id != eid
    ]
    runs = _evidence_by_run(ctx, list(found.values()))
    chain = ctx.attachment("chain-walks", ChainWalks).verify(store)
    graph = _graph_links(ctx, ranking_id, ranking)
    return {
        "ranking": {
            "ranking_id": ranking.ranking_id,
            "experiment": ranking.experiment,
            "benchmark": ranking.benchmark,
            "method": ranking.method,
            "settings": ranking.settings,
            "direction": ranking.direction,
            "bootstrap_seed": ranking.bootstrap_seed,
            "baseline": ranking.baseline,
            "baseline_mean": ranking.baseline_mean,
            "code_version": ranking.code_version,
            "as_of": ranking.as_of,
            "event": _event_ref(stored_ranking),
        },
        "parameters": [
            {"name": p.name, "rank": p.rank, "influence_range": list(p.influence_range)}
            for p in ranking.parameters
        ],
        "evidence": runs,
        "events_used": len(wanted),
        "problems": problems,
        "chain": {
            "ok": chain.ok, "checked": chain.checked,
            "first_bad_position": chain.first_bad_position, "reason": chain.reason,
        },
        "graph": graph,
    }


class ChainWalks:
    """Audits at the same moment share one walk of the hash chain, never one begun before they came.

    Each audit re-verifies the whole log (O(log length)): the full walk is what catches an old
    row edited without re-hashing. Under load, audits queued one walk each; now an audit waits
    for the walk in progress and takes a walk that *started after it arrived* (it read every row
    later than the audit was asked for, as fresh as the audit's own walk would be), else walks.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = float("-inf")
        self._report: VerifyReport | None = None

    def verify(self, store: EventStore) -> VerifyReport:
        arrived = time.monotonic()
        with self._lock:
            if self._report is not None and self._started > arrived:
                return self._report
            self._started = time.monotonic()
            self._report = store.verify()
            return self._report


def _event_ref(e: StoredEvent) -> dict[str, Any]:
    return {"position": e.position, "type": e.event_type, "event_id": e.event_id,
            "recorded_at": e.recorded_at, "hash": e.hash}


def _evidence_by_run(ctx: Context, used: list[StoredEvent]) -> list[dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    source_ids: set[str] = set()
    for e in sorted(used, key=lambda e: e.position):
        entry = runs.setdefault(e.data["run_id"], {"run_id": e.data["run_id"]})
        if e.event_type == "RunRecorded":
            entry.update(params=e.data["params"], seed=e.data.get("seed"),
                         costs=e.data.get("costs", {}), run_event=_event_ref(e),
                         source_id=e.data.get("source_id"))
            if e.data.get("source_id"):
                source_ids.add(e.data["source_id"])
        elif e.event_type == "BenchmarkScored":
            entry.update(score=e.data["value"], stderr=e.data.get("stderr"), score_event=_event_ref(e))
    sources = {sid: _source(ctx, sid) for sid in sorted(source_ids)}
    for entry in runs.values():
        sid = entry.get("source_id")
        entry["source"] = sources.get(sid) if sid else None
    return sorted(runs.values(), key=lambda r: r["run_id"])


def _source(ctx: Context, source_id: str) -> dict[str, Any] | None:
    stream = ctx.store().read_stream(f"source:{source_id}")
    if not stream:
        return None
    first = stream[0]
    return {"source_id": source_id, "citation": first.data["citation"], "event": _event_ref(first)}


def _graph_links(ctx: Context, ranking_id: str, ranking: RankingDerived) -> dict[str, Any]:
    ctx.catch_up()
    rows = run_named(ctx, "ranking_provenance", ranking_id=ranking_id)
    linked: set[int] = set()
    for row in rows:
        for key in ("run_positions", "score_positions"):
            linked.update(row.get(key) or [])
    used = {u.position for u in ranking.used_events}
    return {
        "linked_events": len(linked & used),
        "consistent": bool(rows) and used <= linked,
    }
