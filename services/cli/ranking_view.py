"""How a ranking reads on a terminal: the table of knobs, then the judgement behind each.

One line per parameter in the table (rank, the statistic it ranks by, whether that is
above noise, where returns diminish, what a unit of compute buys, flags); below it the
values tried, the noise basis, the knees, the costs and the reasons for each flag.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from services.cli.output import si, table

if TYPE_CHECKING:
    from events.models import CostEfficiency, Knee, ParameterRanking, RankingDerived
    from services.ranking.matrix import MatrixOutcome
    from services.ranking.rank import RankingOutcome
    from services.ranking.suggest import SuggestedSpec

STATISTIC = {"ofat": "width", "morris": "mu_star", "sobol": "ST"}
COST_PREFERENCE = ("flops_6nd", "flops", "gpu_hours", "wall_s", "params_total", "parameters")
NOISE_SHORT = {"distinguishable": "real", "indistinguishable": "NOISE", "unknown": "?"}


def headline_cost(costs: Iterable[dict[str, float]]) -> str | None:
    """The cost kind to show beside effects: compute first, then time, then size."""
    kinds = {k for c in costs for k in c}
    return next((k for k in COST_PREFERENCE if k in kinds), min(kinds) if kinds else None)


def render_ranking(outcome: RankingOutcome, by_cost: str | None = None) -> str:
    r = outcome.ranking
    direction = f", {r.direction} is better" if r.direction else ""
    lines = [
        f"Ranking {r.ranking_id}  ({r.method}, benchmark {r.benchmark}{direction}, "
        f"experiment {r.experiment})",
        _baseline_line(r),
        f"evidence: log up to position {r.as_of}, {len(r.used_events)} events; bootstrap seed "
        f"{r.bootstrap_seed}; code {r.code_version}",
        "",
        table(
            ["rank", "parameter", STATISTIC.get(r.method, "statistic"), "influence", "noise", "knee",
             "gain per FLOP", "flags"],
            [[p.rank, p.name, p.statistic, _range(p), NOISE_SHORT.get(p.noise.label, "?") if p.noise else "-",
              _knee_short(p.knee), _per_cost_short(p.per_cost, "flops"),
              ",".join(f.kind for f in p.flags) or "-"] for p in r.parameters],
        ),
        "",
    ]
    for p in r.parameters:
        lines.extend(_details(r, p))
    if by_cost:
        lines.append(render_cost_ranking(r, by_cost))
    lines.extend(_tail(outcome))
    return "\n".join(lines)


def _baseline_line(r: RankingDerived) -> str:
    if r.method == "ofat":
        return f"baseline: runs {', '.join(r.baseline_runs)}  mean {r.baseline_mean:.4g}"
    return f"overall mean {r.baseline_mean:.4g} (effects of each value are against it)"


def _range(p: ParameterRanking) -> str:
    lo, hi = p.influence_range
    return f"[{lo:+.3g}, {hi:+.3g}]"


def _knee_short(k: Knee | None) -> str:
    if k is None:
        return "-"
    if k.status == "found" and k.value is not None:
        return f"at {si(k.value)}" + (f" ({si(k.ci[0])}..{si(k.ci[1])})" if k.ci else "")
    return {"not_reached": "not reached", "too_few_values": "too few values", "not_numeric": "n/a",
            "no_gain": "no gain"}.get(k.status, k.status)


def _per_cost_short(effs: list[CostEfficiency], kind: str) -> str:
    e = next((e for e in effs if e.kind == kind), None)
    if e is None:
        return "-"
    if e.gain <= 0:
        return "no gain"
    if e.per_unit is None:
        return "free"
    return f"{e.per_unit:.3g}"


def _details(r: RankingDerived, p: ParameterRanking) -> list[str]:
    lines = [f"{p.rank}. {p.name}"]
    if p.indices:
        lines.append("   indices: " + ", ".join(f"{k} {v:.3g}" if v is not None else f"{k} -"
                                                for k, v in sorted(p.indices.items())))
    if p.s2:
        pairs = sorted(((k, v) for k, v in p.s2.items() if v is not None), key=lambda kv: -abs(kv[1]))[:3]
        if pairs:
            lines.append("   strongest interactions (S2): " + ", ".join(f"{k} {v:.3g}" for k, v in pairs))
    cost_kind = headline_cost(v.cost for v in p.values)
    tried = "  ".join(
        f"{v.value}{'*' if v.is_baseline else ''}: {v.mean:.4g} ({v.effect:+.3g}"
        + (f", ci {v.ci[0]:.3g}..{v.ci[1]:.3g}" if v.ci else "") + f", n={v.n}"
        + (f", {si(v.cost[cost_kind])} {cost_kind}" if cost_kind and cost_kind in v.cost else "") + ")"
        for v in p.values
    )
    lines.append(f"   values: {tried}")
    if p.noise:
        lines.append(f"   noise: {p.noise.label} ({p.noise.basis})")
    for label, k in (("knee", p.knee), ("knee per cost", p.knee_cost)):
        if k is not None and k.status != "not_numeric":
            lines.append(f"   {label}: {k.status.replace('_', ' ')}" + (f": {k.detail}" if k.detail else ""))
    for e in p.per_cost:
        lines.append(f"   per {e.kind} ({e.source}): {_cost_sentence(e)}")
    for f in p.flags:
        lines.append(f"   FLAG {f.kind}: {f.reason}")
    return lines


def _cost_sentence(e: CostEfficiency) -> str:
    base = f"{e.value} gains {e.gain:+.3g} for {si(e.extra_cost)} more"
    if e.per_unit is not None:
        base += f" = {e.per_unit:.3g} per unit"
    return base + (f" ({e.note})" if e.note else "")


def render_cost_ranking(r: RankingDerived, kind: str) -> str:
    """The alternative order: gain per unit of one cost kind (free improvements first)."""
    rows: list[list[Any]] = []
    entries = [(p.name, e) for p in r.parameters for e in p.per_cost if e.kind == kind]
    entries.sort(key=lambda ne: (ne[1].gain <= 0, ne[1].per_unit is not None,
                                 -(ne[1].per_unit if ne[1].per_unit is not None else ne[1].gain), ne[0]))
    for i, (name, e) in enumerate(entries, start=1):
        rows.append([i, name, e.value, e.gain, si(e.extra_cost),
                     "free" if e.per_unit is None and e.gain > 0 else e.per_unit, e.note or "-"])
    if not rows:
        known = sorted({e.kind for p in r.parameters for e in p.per_cost}) or ["none recorded"]
        return f"\nno {kind!r} costs in this ranking; kinds with costs: {', '.join(known)}"
    return f"\nBy gain per {kind}:\n" + table(
        ["rank", "parameter", "value", "gain", f"extra {kind}", "gain per unit", "note"], rows)


def _tail(outcome: RankingOutcome) -> list[str]:
    r = outcome.ranking
    lines = []
    if outcome.not_varied_alone:
        shown = ", ".join(outcome.not_varied_alone[:8])
        more = len(outcome.not_varied_alone) - 8
        lines.append(f"\nnot varied alone (no ranking possible): {shown}"
                     + (f" and {more} more (--json lists them)" if more > 0 else ""))
    if r.excluded_runs:
        shown = ", ".join(r.excluded_runs[:10])
        lines.append(f"runs left out of the analysis: {shown}"
                     + (f" and {len(r.excluded_runs) - 10} more" if len(r.excluded_runs) > 10 else ""))
    lines.extend(f"note: {n}" for n in outcome.notes)
    again = " (already recorded: same evidence, same code, same numbers)" if outcome.duplicate else ""
    lines.append(f"\nrecorded as RankingDerived at position {outcome.position}{again}; "
                 f"`knobs audit {r.ranking_id}` shows its evidence; "
                 f"`knobs rank ... --as-of {r.as_of}` reproduces it")
    return lines


def render_matrix(m: MatrixOutcome) -> str:
    lines = [f"Experiment {m.experiment}: {len(m.rows)} parameters x {len(m.benchmarks)} benchmarks", ""]
    headers = ["agg", "parameter", "mean rank", *m.benchmarks]
    rows = [[row.aggregate_rank, row.parameter, row.mean_rank,
             *[_cell(row.ranks[b], row.noise[b]) for b in m.benchmarks]] for row in m.rows]
    lines.append(table(headers, rows))
    lines.append("\n(rank per benchmark; ~ marks an effect indistinguishable from noise)")
    if m.disagreements:
        lines.append("\nBenchmarks disagree:")
        lines.extend(f"  {d.parameter} [{d.kind}]: {d.reason}" for d in m.disagreements)
    else:
        lines.append("\nThe benchmarks agree on every knob.")
    lines.append("\nRankings recorded:")
    lines.extend(f"  {b}: {o.ranking.ranking_id} (position {o.position})" for b, o in m.outcomes.items())
    return "\n".join(lines)


def _cell(rank: int | None, noise: str | None) -> str:
    if rank is None:
        return "-"
    return f"{rank}{'~' if noise == 'indistinguishable' else ''}"


def render_audit(trail: dict[str, Any]) -> str:
    r = trail["ranking"]
    ev = r["event"]
    lines = [
        f"Ranking {r['ranking_id']}",
        f"  {r['method']} on {r['benchmark']} in {r['experiment']}; code {r['code_version']}; "
        f"evidence up to log position {r['as_of']}",
        f"  settings: {_settings_line(r)}",
        f"  recorded: event #{ev['position']} {ev['type']} {ev['event_id']} sha256 {ev['hash'][:16]}…",
        "  ranks: " + ", ".join(f"{p['rank']}. {p['name']}" for p in trail["parameters"]),
        f"  derived from {trail['events_used']} events:",
    ]
    citations: dict[str, str] = {}
    for run in trail["evidence"]:
        re_, se = run.get("run_event"), run.get("score_event")
        lines.append(f"    run {run['run_id']}: score {run.get('score')}"
                     f"  [#{re_['position']} RunRecorded {re_['hash'][:10]}…, "
                     f"#{se['position']} BenchmarkScored {se['hash'][:10]}…]")
        if run.get("source"):
            src = run["source"]
            citations[src["source_id"]] = f"{src['citation']}  [#{src['event']['position']} SourceCited]"
            lines.append(f"      cited from {src['source_id']}")
    if citations:
        lines.append("  citations:")
        lines.extend(f"    {sid}: {text}" for sid, text in sorted(citations.items()))
    chain = trail["chain"]
    verdict = "verified" if chain["ok"] else f"BROKEN at position {chain['first_bad_position']}"
    lines.append(f"  hash chain: {verdict} ({chain['checked']} events)")
    g = trail["graph"]
    agreement = "consistent with the log" if g["consistent"] else "NOT consistent: run `knobs graph rebuild`"
    lines.append(f"  graph: ranking linked to {g['linked_events']} of those events ({agreement})")
    for p in trail["problems"]:
        lines.append(f"  PROBLEM: {p}")
    return "\n".join(lines)


def _settings_line(r: dict[str, Any]) -> str:
    """The choices that set the numbers, so the reader can repeat them with `knobs rank`."""
    shown = {k: v for k, v in sorted((r.get("settings") or {}).items()) if v not in (None, [], "")}
    parts = [f"{k}={v}" for k, v in shown.items()]
    if r.get("bootstrap_seed") is not None:
        parts.append(f"bootstrap seed {r['bootstrap_seed']}")
    return ", ".join(parts) or "defaults"


def render_suggested(s: SuggestedSpec) -> str:
    lines = [f"{s.name}: a follow-up of {s.experiment} ({s.runs} runs), from ranking {s.ranking_id} "
             f"on {s.benchmark}", "why:"]
    lines += [f"  - {r}" for r in s.reasons]
    lines.append(f"written to {s.path}; check it with `knobs experiment plan {s.path}`")
    return "\n".join(lines)
