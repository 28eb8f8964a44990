"""`knobs export notes DIR`: the log as a Markdown vault a notes app (Obsidian) opens as it is.

One note per experiment, benchmark, parameter, data set, latest ranking, shift measurement,
verdict and distilled question-answer pair, plus index.md, each with YAML front matter (tags,
created, updated, sources) and [[wiki-links]] that name a file's basename exactly, since
Obsidian resolves links by basename. Given a drawing function, each ranking's tornado chart is
written as Figures/ranking-<id>.svg and embedded in its note (`![[ranking-<id>.svg]]`); the
drawing is the caller's (the CLI passes matplotlib's, services/figures), since figures sit
above this package. Basenames are made safe
on every OS and unique (case-insensitively) across the whole vault. The export is sorted
and dated from the log only, so the same log gives the same bytes; a manifest lists what
it wrote, so a re-export removes its own stale notes and never touches anything else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from events.models import (
    CostEfficiency,
    JSONScalar,
    Knee,
    LeverageFlag,
    NoiseVerdict,
    ParameterRanking,
    RankingDerived,
)
from services.core.context import Context
from services.core.errors import BadInput
from services.export import MANIFEST
from services.export.snapshot import (
    BenchmarkFact,
    DatasetFact,
    ExperimentFact,
    MeasurementFact,
    PairFact,
    ParameterFact,
    RankingEntry,
    Snapshot,
    Span,
    VerdictFact,
    build,
    value_key,
)

MANIFEST_FORMAT = "knobs-notes"
FOLDERS: dict[str, str] = {
    "experiment": "Experiments",
    "benchmark": "Benchmarks",
    "parameter": "Parameters",
    "dataset": "Datasets",
    "ranking": "Rankings",
    "measurement": "Measurements",
    "verdict": "Verdicts",
    "pair": "Pairs",
}
FIGURES = "Figures"
"""Where the figures embedded in notes go (not notes: they are not counted as such)."""
RankingFigure = Callable[[RankingDerived], str]
"""Draws a ranking's figure as SVG text; the same ranking must give the same text."""
MAX_RUN_ROWS = 200
"""Runs listed in an experiment note; the rest are counted (a 10k-run table helps no reader)."""

_UNSAFE = re.compile(r'[/\\:*?"<>|#^\[\]\x00-\x1f\x7f]')
# / \ : * ? " < > | are refused by some OS; # ^ [ ] | break a wiki-link's target.
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"{port}{i}" for port in ("COM", "LPT") for i in range(1, 10))}
_MAX_BYTES = 120
_OUR_PATH = re.compile(rf"^(?:index\.md|(?:{'|'.join(FOLDERS.values())})/[^/]+\.md|{FIGURES}/[^/]+\.svg)$")


# ----------------------------------------------------------------------- names and links


def safe_name(name: str) -> str:
    """A basename every OS accepts and a wiki-link can name (NFC, no reserved characters)."""
    text = _UNSAFE.sub("_", unicodedata.normalize("NFC", name))
    text = re.sub(r"\s+", " ", text).strip(" .")
    if not text:
        text = "_"
    if text.split(".")[0].upper() in _RESERVED:
        text += "_"
    if len(text.encode("utf-8")) > _MAX_BYTES:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        while len(text.encode("utf-8")) > _MAX_BYTES - 10:
            text = text[:-1]
        text = f"{text.rstrip(' .')}~{digest}"
    return text


def _shown(text: str) -> str:
    """Display text for a link: no characters that end a link or an alias."""
    return " ".join(text.replace("[", "(").replace("]", ")").replace("|", "/").split())


class Names:
    """The basename of every note, unique across the vault ignoring case (Windows, macOS)."""

    def __init__(self, snap: Snapshot) -> None:
        self._names: dict[tuple[str, str], str] = {}
        used = {"index"}
        keys: list[tuple[str, str, str]] = []
        keys += [("experiment", e.name, e.name) for e in snap.experiments]
        keys += [("benchmark", b.name, b.name) for b in snap.benchmarks]
        keys += [("parameter", p.name, p.name) for p in snap.parameters]
        keys += [("dataset", d.name, d.name) for d in snap.datasets]
        keys += [("ranking", r.ranking.ranking_id, ranking_title(r)) for r in snap.rankings]
        keys += [("measurement", m.measurement_id, measurement_title(m)) for m in snap.measurements]
        keys += [("verdict", v.test_id, f"{v.name} verdict ({v.test_id[:8]})") for v in snap.verdicts]
        keys += [("pair", p.node_id, pair_title(p)) for p in snap.pairs]
        for kind, key, title in keys:
            base = safe_name(title)
            candidate, n = base, 1
            while candidate.casefold() in used:
                n += 1
                candidate = f"{base} ({kind})" if n == 2 else f"{base} ({kind} {n - 1})"
            used.add(candidate.casefold())
            self._names[(kind, key)] = candidate

    def has(self, kind: str, key: str) -> bool:
        return (kind, key) in self._names

    def name(self, kind: str, key: str) -> str:
        return self._names[(kind, key)]

    def aliases(self, kind: str, key: str) -> list[str]:
        """[key] when its note's basename had to differ from it, so a search by the name finds the note."""
        return [key] if self._names[(kind, key)] != key else []

    def path(self, kind: str, key: str) -> str:
        return f"{FOLDERS[kind]}/{self._names[(kind, key)]}.md"

    def link(self, kind: str, key: str, display: str | None = None, *, table: bool = False) -> str:
        """`[[basename]]`, or `[[basename|shown]]` when the name was changed to be safe.

        In a table the alias bar is escaped (`\\|`), as Obsidian expects, so it does not split
        the cell.
        """
        target = self._names[(kind, key)]
        shown = _shown(display if display is not None else key)
        if shown == target:
            return f"[[{target}]]"
        bar = "\\|" if table else "|"
        return f"[[{target}{bar}{shown}]]"

    def maybe(self, kind: str, key: str, *, table: bool = False) -> str:
        """A link when the note exists, else the name as text."""
        return self.link(kind, key, table=table) if self.has(kind, key) else esc(key)


def figure_name(entry: RankingEntry) -> str:
    """The basename of a ranking's tornado SVG: unique, since ranking ids are."""
    return safe_name(f"ranking-{entry.ranking.ranking_id}") + ".svg"


def ranking_title(entry: RankingEntry) -> str:
    r = entry.ranking
    return f"{r.experiment} - {r.benchmark} - {r.method} - {entry.short_id}"


# ----------------------------------------------------------------------- formatting


def esc(text: str) -> str:
    """Plain text safe in a table cell."""
    return " ".join(str(text).replace("|", "\\|").split())


def num(x: float | None) -> str:
    if x is None:
        return "-"
    return "0" if x == 0 else f"{x:.4g}"


def signed(x: float | None) -> str:
    if x is None:
        return "-"
    return "0" if x == 0 else f"{x:+.4g}"


def val(v: JSONScalar | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def ci_text(ci: tuple[float, float] | None) -> str:
    return f"{num(ci[0])} … {num(ci[1])}" if ci else "-"


def span_text(lo: float, hi: float) -> str:
    return f"{signed(lo)} … {signed(hi)}"


def noise_text(n: NoiseVerdict | None, *, basis: bool = False) -> str:
    """The verdict and the numbers compared; `basis` adds where the noise scale came from."""
    if n is None:
        return "-"
    scale = f" vs noise {num(n.noise)}" if n.noise is not None else ""
    why = f"; {n.basis}" if basis and n.basis else ""
    return f"{n.label} ({num(n.effect)}{scale}{why})"


def knee_text(k: Knee | None) -> str:
    if k is None:
        return "-"
    per = "per doubling" if k.per == "doubling" else "per doubling of cost"
    if k.status == "found":
        ci = f" (CI {num(k.ci[0])} … {num(k.ci[1])})" if k.ci else ""
        model = f", {k.model}" if k.model else ""
        return f"at {num(k.value)}{ci}, {per}{model}"
    if k.status == "not_reached":
        where = f"{num(k.explored[0])} … {num(k.explored[1])}" if k.explored else "the explored range"
        return f"not reached in {where}"
    return k.status.replace("_", " ") + (f": {k.detail}" if k.detail else "")


def cost_text(c: CostEfficiency) -> str:
    per = f"{num(c.per_unit)} per unit" if c.per_unit is not None else "free (no extra cost)"
    return f"{c.kind}: {per} at {val(c.value)}"


def flags_text(flags: Sequence[LeverageFlag]) -> str:
    return ", ".join(f.kind for f in flags) or "-"


def md_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _date(recorded_at: str) -> dt.date:
    return dt.date.fromisoformat(recorded_at[:10])


def front_matter(
    snap: Snapshot,
    tags: list[str],
    span: Span | None,
    sources: list[str],
    *,
    aliases: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> str:
    data: dict[str, Any] = {"tags": tags}
    dates = snap.dates(span)
    if dates:
        data["created"] = _date(dates[0])
        data["updated"] = _date(dates[1])
    data["sources"] = sources
    if aliases:
        data["aliases"] = list(aliases)
    data.update(extra or {})
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=4096)
    return f"---\n{body}---\n"


def _event_source(position: int, event_type: str, event_id: str) -> str:
    return f"log {position}: {event_type} {event_id}"


def _evidence_source(positions: Iterable[int], what: str) -> list[str]:
    ordered = sorted(set(positions))
    if not ordered:
        return []
    where = f"log {ordered[0]}" if len(ordered) == 1 else f"log {ordered[0]}..{ordered[-1]}"
    return [f"{where}: {len(ordered)} {what} events"]


def _citations(snap: Snapshot, source_ids: Iterable[str]) -> list[str]:
    out = []
    for sid in sorted(set(source_ids)):
        src = snap.sources.get(sid)
        if src is not None:
            out.append(f"{src.citation} (source {sid}, log {src.event.position})")
        else:
            out.append(f"source {sid} (cited by runs; no SourceCited event)")
    return out


def _ranking_sources(entries: Iterable[RankingEntry]) -> list[str]:
    return [_event_source(e.event.position, "RankingDerived", e.event.event_id) for e in entries]


# ----------------------------------------------------------------------- notes


def _statistic_name(method: str) -> str:
    return {"ofat": "influence width", "morris": "mu_star", "sobol": "ST"}.get(method, "statistic")


def _judgement_lines(p: ParameterRanking) -> list[str]:
    """Noise and knees of one parameter, in full (tables show them short)."""
    lines = [f"- Noise: {noise_text(p.noise, basis=True)}", f"- Knee: {knee_text(p.knee)}"]
    if p.knee is not None and p.knee.detail and p.knee.status == "found":
        lines.append(f"  - {p.knee.detail}")
    if p.knee_cost is not None:
        lines.append(f"- Knee per cost: {knee_text(p.knee_cost)}")
    return lines


def _knob_row(names: Names, p: ParameterRanking) -> list[str]:
    return [
        str(p.rank),
        names.link("parameter", p.name, table=True),
        num(p.statistic),
        span_text(*p.influence_range),
        esc(noise_text(p.noise)),
        esc(knee_text(p.knee)),
        "<br>".join(esc(cost_text(c)) for c in p.per_cost) or "-",
        esc(flags_text(p.flags)),
    ]


_KNOB_HEADERS = ["Rank", "Parameter", "Statistic", "Influence range", "Noise", "Knee", "Effect per cost",
                 "Flags"]


def ranking_note(snap: Snapshot, names: Names, entry: RankingEntry, *, figure: str | None = None) -> str:
    """The ranking in full; `figure`, the basename of its tornado SVG in the vault, is embedded."""
    r = entry.ranking
    exp = next((e for e in snap.experiments if e.name == r.experiment), None)
    used_runs = set(r.baseline_runs) | {run for p in r.parameters for v in p.values for run in v.runs}
    source_ids = [run.source_id for run in (exp.run_facts if exp else ())
                  if run.run_id in used_runs and run.source_id]
    used_positions = [u.position for u in r.used_events]
    sources = (_ranking_sources([entry]) + _evidence_source(used_positions, "run and score")
               + _citations(snap, source_ids))
    head = front_matter(
        snap, ["knobs/ranking", f"knobs/method/{safe_name(r.method).replace(' ', '_')}"],
        (entry.event.position, entry.event.position), sources, aliases=[r.ranking_id],
        extra={"ranking_id": r.ranking_id, "experiment": r.experiment, "benchmark": r.benchmark,
               "method": r.method, "as_of": r.as_of, "code_version": r.code_version},
    )
    direction = {"lower": "lower is better", "higher": "higher is better"}.get(r.direction or "",
                                                                            "not recorded")
    lines = [
        f"# Ranking {entry.short_id}: {r.experiment} · {r.benchmark} · {r.method}",
        "",
        f"- Experiment: {names.maybe('experiment', r.experiment)}",
        f"- Benchmark: {names.maybe('benchmark', r.benchmark)} ({direction})",
        f"- Method: {r.method} (ranked by {_statistic_name(r.method)})",
        f"- Ranking id: `{r.ranking_id}`",
        f"- As of log position: {r.as_of} (`knobs rank --experiment {r.experiment} --benchmark "
        f"{r.benchmark} --as-of {r.as_of}` reproduces it)",
        f"- Code version: `{r.code_version}`",
        f"- Bootstrap seed: {r.bootstrap_seed if r.bootstrap_seed is not None else '-'}",
        f"- Recorded: log position {entry.event.position}, {entry.event.recorded_at}",
        f"- Baseline: mean {num(r.baseline_mean)} over runs {', '.join(r.baseline_runs) or '-'}",
    ]
    if figure is not None:
        lines += ["", f"![[{figure}]]", "",
                  "Each bar spans the effects (score minus the baseline's mean) of one parameter's values; "
                  "the grey band is the noise it was judged against. "
                  f"`knobs plot ranking {r.ranking_id} --out FILE.png` draws it again."]
    if r.settings:
        lines += ["", "## Settings", ""]
        lines += [f"- {k}: `{json.dumps(v, sort_keys=True)}`" for k, v in sorted(r.settings.items())]
    if r.baseline:
        lines += ["", "## Baseline configuration", ""]
        lines += md_table(["Parameter", "Value"], [
            [names.maybe("parameter", k, table=True), esc(val(v))] for k, v in sorted(r.baseline.items())
        ])
    lines += ["", "## Parameters", ""]
    lines += md_table(_KNOB_HEADERS, [_knob_row(names, p) for p in r.parameters])
    for p in r.parameters:
        lines += ["", f"### {p.rank}. {names.link('parameter', p.name)}", ""]
        lines += md_table(["Value", "Mean", "Effect", "95% CI", "n", "Cost", "Baseline"], [
            [esc(val(v.value)), num(v.mean), signed(v.effect),
             ci_text(v.ci), str(v.n),
             esc(", ".join(f"{k} {num(c)}" for k, c in sorted(v.cost.items()))) or "-",
             "yes" if v.is_baseline else ""]
            for v in sorted(p.values, key=lambda v: value_key(v.value))
        ])
        lines += ["", *_judgement_lines(p)]
    index_keys = sorted({k for p in r.parameters for k in p.indices})
    if index_keys:
        lines += ["", "## Sensitivity indices (SALib)", ""]
        lines += md_table(["Parameter", *index_keys], [
            [names.link("parameter", p.name, table=True), *(num(p.indices.get(k)) for k in index_keys)]
            for p in r.parameters
        ])
    s2 = [(p.name, other, v) for p in r.parameters for other, v in sorted(p.s2.items())]
    if s2:
        lines += ["", "## Second-order indices (S2)", ""]
        lines += md_table(["Parameter", "With", "S2"], [
            [names.link("parameter", a, table=True), names.maybe("parameter", b, table=True), num(v)]
            for a, b, v in s2
        ])
    costs = [(p, c) for p in r.parameters for c in p.per_cost]
    if costs:
        lines += ["", "## Effect per cost", ""]
        lines += md_table(["Parameter", "Kind", "Recorded as", "Value", "Gain", "Extra cost", "Gain per unit",
                           "Note"], [
            [names.link("parameter", p.name, table=True), esc(c.kind), esc(c.source), esc(val(c.value)),
             signed(c.gain), num(c.extra_cost), num(c.per_unit) if c.per_unit is not None else "free",
             esc(c.note) or "-"]
            for p, c in costs
        ])
    flags = [(p, f) for p in r.parameters for f in p.flags]
    if flags:
        lines += ["", "## Under-used, high-leverage parameters", ""]
        lines += [f"- {names.link('parameter', p.name)}: **{f.kind}**: {f.reason}" for p, f in flags]
    lines += ["", "## Provenance", ""]
    lo_hi = f" (log positions {min(used_positions)}..{max(used_positions)})" if used_positions else ""
    lines.append(f"- Events used: {len(r.used_events)}{lo_hi}")
    if r.excluded_runs:
        lines.append(f"- Runs left out: {', '.join(r.excluded_runs)}")
    if entry.earlier:
        lines.append(f"- Supersedes earlier rankings of the same experiment, benchmark and method: "
                     f"{', '.join(f'`{i}`' for i in entry.earlier)}")
    for citation in _citations(snap, source_ids):
        lines.append(f"- Cited: {citation}")
    lines.append(f"- Audit the chain to every event and citation: `knobs audit {r.ranking_id}`")
    return head + "\n" + "\n".join(lines) + "\n"


def parameter_note(snap: Snapshot, names: Names, p: ParameterFact) -> str:
    sources = _ranking_sources(e for e, _ in p.rankings)
    if p.runs and p.run_span:
        sources.append(f"log {p.run_span[0]}..{p.run_span[1]}: {p.runs} scored runs set it")
    tags = ["knobs/parameter"] + (["knobs/under-used"] if any(pr.flags for _, pr in p.rankings) else [])
    aliases = names.aliases("parameter", p.name)
    head = front_matter(snap, tags, p.span, sources, aliases=aliases, extra={"parameter": p.name})
    lines = [f"# {p.name}", ""]
    if p.experiments:
        lines.append("Explored in " + ", ".join(names.maybe("experiment", e) for e in p.experiments) + ".")
    lines += ["", "## Rankings", ""]
    if p.rankings:
        lines += md_table(
            ["Ranking", "Experiment", "Benchmark", "Method", "Rank", "Statistic", "Influence range", "Noise",
             "Knee", "Knee per cost", "Effect per cost", "Flags"],
            [[names.link("ranking", e.ranking.ranking_id, e.short_id, table=True),
              names.maybe("experiment", e.ranking.experiment, table=True),
              names.maybe("benchmark", e.ranking.benchmark, table=True),
              esc(e.ranking.method), f"{pr.rank} of {len(e.ranking.parameters)}", num(pr.statistic),
              span_text(*pr.influence_range), esc(noise_text(pr.noise)), esc(knee_text(pr.knee)),
              esc(knee_text(pr.knee_cost)), "<br>".join(esc(cost_text(c)) for c in pr.per_cost) or "-",
              esc(flags_text(pr.flags))]
             for e, pr in p.rankings],
        )
    else:
        lines.append("Not ranked yet: `knobs rank --experiment NAME --benchmark NAME` ranks an experiment's "
                     "knobs.")
    if p.values:
        lines += ["", "## Values explored", ""]
        lines += md_table(["Experiment", "Values"], [
            [names.maybe("experiment", exp, table=True), esc(", ".join(val(v) for v in values))]
            for exp, values in p.values
        ])
    best = [(e, pr) for e, pr in p.rankings if pr.values]
    if best:
        lines += ["", "## Effects by value"]
        for e, pr in best:
            lines += ["", f"### {names.link('ranking', e.ranking.ranking_id, ranking_title(e))}", ""]
            lines += md_table(["Value", "Mean", "Effect", "95% CI", "n"], [
                [esc(val(v.value)), num(v.mean), signed(v.effect),
                 ci_text(v.ci), str(v.n)]
                for v in sorted(pr.values, key=lambda v: value_key(v.value))
            ])
    flagged = [(e, pr, f) for e, pr in p.rankings for f in pr.flags]
    if flagged:
        lines += ["", "## Leverage flags", ""]
        lines += [f"- {names.link('ranking', e.ranking.ranking_id, e.short_id)} "
                  f"({esc(e.ranking.benchmark)}): **{f.kind}**: {f.reason}" for e, pr, f in flagged]
    datasets = [d for d in snap.datasets if p.name in d.knobs]
    if datasets:
        lines += ["", "## Data sets", ""]
        lines += [f"- {names.link('dataset', d.name)}" for d in datasets]
    return head + "\n" + "\n".join(lines) + "\n"


def benchmark_note(snap: Snapshot, names: Names, b: BenchmarkFact) -> str:
    sources = _ranking_sources(b.rankings)
    if b.scores and b.score_span:
        sources.append(f"log {b.score_span[0]}..{b.score_span[1]}: {b.scores} scores")
    aliases = names.aliases("benchmark", b.name)
    head = front_matter(snap, ["knobs/benchmark"], b.span, sources, aliases=aliases,
                        extra={"benchmark": b.name, "direction": b.direction})
    direction = {"lower": "Lower is better.", "higher": "Higher is better."}.get(b.direction or "", "")
    lines = [f"# {b.name}", ""]
    if direction:
        lines += [direction, ""]
    if b.experiments:
        lines.append(f"Scored {b.scores} times in " + ", ".join(names.maybe("experiment", e)
                                                                for e in b.experiments) + ".")
    lines += ["", "## Knobs that matter"]
    if not b.rankings:
        lines += ["", f"Not ranked yet: `knobs rank --experiment NAME --benchmark {b.name}`."]
    for e in b.rankings:
        r = e.ranking
        lines += ["", f"### {names.maybe('experiment', r.experiment)} · {r.method}", "",
                  f"Ranking {names.link('ranking', r.ranking_id, e.short_id)}, as of log position {r.as_of}, "
                  f"baseline mean {num(r.baseline_mean)}, ranked by {_statistic_name(r.method)}.", ""]
        lines += md_table(_KNOB_HEADERS, [_knob_row(names, p) for p in r.parameters])
    return head + "\n" + "\n".join(lines) + "\n"


def _mode(values: list[JSONScalar]) -> JSONScalar:
    """The most common value; ties go to the smallest, so the "usual" setting is deterministic."""
    counts = Counter(json.dumps(v) for v in values)
    top = max(counts.values())
    return min((v for v in values if counts[json.dumps(v)] == top), key=value_key)


def experiment_note(snap: Snapshot, names: Names, e: ExperimentFact) -> str:
    run_positions = {p for r in e.run_facts for p in r.positions}
    sources: list[str] = []
    if e.design_event is not None:
        sources.append(_event_source(e.design_event.position, "ExperimentDeclared", e.design_event.event_id))
    sources += _evidence_source(run_positions, "run and score") + _ranking_sources(e.rankings)
    sources += _citations(snap, e.sources)
    aliases = names.aliases("experiment", e.name)
    head = front_matter(snap, ["knobs/experiment"], e.span, sources, aliases=aliases,
                        extra={"experiment": e.name, "runs": e.runs})
    lines = [f"# {e.name}", ""]
    if e.design is not None and e.design.spec.get("description"):
        lines += [str(e.design.spec["description"]), ""]
    lines += [f"- Runs: {e.runs} ({len(e.run_facts)} scored, {e.scores} scores)"]
    if e.benchmarks:
        lines.append("- Benchmarks: " + ", ".join(names.maybe("benchmark", b) for b in e.benchmarks))
    if e.datasets:
        lines.append("- Data sets: " + ", ".join(names.maybe("dataset", d) for d in e.datasets))
    for citation in _citations(snap, e.sources):
        lines.append(f"- Cited: {citation}")
    lines += ["", "## Design", ""]
    lines += _design_lines(names, e)
    lines += ["", "## Rankings", ""]
    if e.rankings:
        lines += md_table(["Ranking", "Benchmark", "Method", "As of", "Top knobs"], [
            [names.link("ranking", r.ranking.ranking_id, r.short_id, table=True),
             names.maybe("benchmark", r.ranking.benchmark, table=True), esc(r.ranking.method),
             str(r.ranking.as_of),
             ", ".join(names.link("parameter", p.name, table=True) for p in r.ranking.parameters[:3]) or "-"]
            for r in e.rankings
        ])
    else:
        lines.append(f"Not ranked yet: `knobs rank --experiment {e.name} --benchmark NAME`.")
    values = {p.name: dict(p.values).get(e.name, ()) for p in snap.parameters if e.name in p.experiments}
    if values:
        lines += ["", "## Parameters", ""]
        lines += md_table(["Parameter", "Values"], [
            [names.link("parameter", name, table=True), esc(", ".join(val(v) for v in vs)) or "-"]
            for name, vs in sorted(values.items())
        ])
    if e.run_facts:
        lines += ["", "## Runs", ""]
        lines += _run_table(names, e)
    return head + "\n" + "\n".join(lines) + "\n"


def _design_lines(names: Names, e: ExperimentFact) -> list[str]:
    if e.design is None or e.design_event is None:
        return ["Not declared in the log: its runs were imported (`knobs import results`)."]
    d = e.design
    spec = d.spec
    design = spec.get("design") or {}
    seeds = ", ".join(str(s) for s in spec.get("seeds") or [])
    options = ", ".join(f"{k} {v}" for k, v in sorted(design.items()) if k != "method")
    lines = [
        f"- Executor: {d.executor}",
        f"- Method: {d.design}" + (f" ({options})" if options else ""),
        f"- Planned runs: {len(d.run_ids)}; seeds: {seeds or '-'}",
        f"- Declared: log position {e.design_event.position}, spec sha256 `{d.spec_sha256[:12]}`",
        "- Benchmarks declared: " + (", ".join(names.maybe("benchmark", b) for b in d.benchmarks) or "-"),
    ]
    if d.estimated_cost:
        estimated = ", ".join(f"{k} {num(v)}" for k, v in sorted(d.estimated_cost.items()))
        lines.append(f"- Estimated cost: {estimated}")
    factors = spec.get("factors") or {}
    if factors:
        lines += ["", "### Factors", ""]
        rows = []
        for name, factor in sorted(factors.items()):
            f = factor if isinstance(factor, dict) else {}
            explored = (", ".join(val(v) for v in f["values"]) if f.get("values") is not None
                        else " … ".join(val(v) for v in f.get("range") or []))
            rows.append([names.maybe("parameter", name, table=True), esc(explored) or "-",
                         esc(str(f.get("scale") or "")) or "-", esc(str(f.get("levels") or "")) or "-"])
        lines += md_table(["Parameter", "Values or range", "Scale", "Levels"], rows)
    base = spec.get("base") or {}
    if base:
        lines += ["", "### Base", ""]
        lines += md_table(["Parameter", "Value"], [
            [names.maybe("parameter", k, table=True), esc(val(v))] for k, v in sorted(base.items())
        ])
    return lines


def _run_table(names: Names, e: ExperimentFact) -> list[str]:
    runs = e.run_facts
    usual: dict[str, JSONScalar] = {}
    for name in sorted({k for r in runs for k in r.params}):
        seen = [r.params[name] for r in runs if name in r.params]
        usual[name] = _mode(seen)
    rows = []
    for r in runs[:MAX_RUN_ROWS]:
        changed = ", ".join(f"{k}={val(v)}" for k, v in sorted(r.params.items())
                            if json.dumps(v) != json.dumps(usual.get(k)))
        rows.append([esc(r.run_id), str(r.seed) if r.seed is not None else "-", esc(changed) or "(usual)",
                     *(num(r.scores.get(b)) for b in e.benchmarks)])
    lines = md_table(["Run", "Seed", "Differs from the usual setting",
                      *(names.maybe("benchmark", b, table=True) for b in e.benchmarks)], rows)
    if len(runs) > MAX_RUN_ROWS:
        lines += ["", f"… and {len(runs) - MAX_RUN_ROWS} more runs: `knobs query --name runs_for_benchmark "
                      f"-p experiment={e.name} -p benchmark=NAME` lists them all."]
    usual_text = ", ".join(f"{k}={val(v)}" for k, v in sorted(usual.items()))
    return [f"Usual setting (most common value of each parameter): {esc(usual_text)}", "", *lines]


def dataset_note(snap: Snapshot, names: Names, d: DatasetFact) -> str:
    runs = sum(n for _, n in d.experiments)
    aliases = names.aliases("dataset", d.name)
    sources = [f"log {d.span[0]}..{d.span[1]}: {runs} scored runs used it"] if d.span else []
    head = front_matter(snap, ["knobs/dataset"], d.span, sources, aliases=aliases, extra={"dataset": d.name})
    knobs = " or ".join(names.maybe("parameter", k) for k in d.knobs)
    lines = [f"# {d.name}", "", f"The value of the run parameter {knobs} in {runs} scored runs.", "",
             "## Experiments", ""]
    lines += md_table(["Experiment", "Runs"], [
        [names.maybe("experiment", exp, table=True), str(n)] for exp, n in d.experiments
    ])
    return head + "\n" + "\n".join(lines) + "\n"


def measurement_title(m: MeasurementFact) -> str:
    return f"{m.dataset_name} on {m.model_ref} ({m.measurement_id[:8]})"


def measurement_note(snap: Snapshot, names: Names, m: MeasurementFact) -> str:
    sources = [_event_source(m.request.position, "ShiftRequested", m.request.event_id),
               f"log {m.request.position}..{m.summary.position}: {m.chunks} ShiftMeasured events",
               _event_source(m.summary.position, "DatasetShiftMeasured", m.summary.event_id)]
    head = front_matter(snap, ["knobs/measurement"], m.span, sources,
                        extra={"measurement": m.measurement_id, "dataset_sha256": m.dataset_sha256,
                               "model": m.model_ref, "volatility": m.figures.get("volatility")})
    f = m.figures
    s = m.settings
    lines = [f"# {esc(measurement_title(m))}", "",
             f"How much each of the {f['examples']} examples of `{esc(m.dataset_name)}` moves "
             f"`{esc(m.model_ref)}`: {s.get('metrics')} metrics, {s.get('optimizer')} lr {s.get('lr')}.", "",
             "## The data set", ""]
    lines += md_table(["Figure", "Value"], [[k, num(f.get(k))] for k in (
        "volatility", "total_shift", "net_shift", "coherence", "noise_scale", "grad_norm_p50",
        "grad_norm_p90", "grad_norm_max", "probe_loss") if f.get(k) is not None])
    lines += ["", "## Examples that move it most", ""]
    lines += md_table(["Example", "grad_norm", "loss", "loss_drop", "probe_shift"], [
        [esc(str(x["id"])), num(x["grad_norm"]), num(x["loss_before"]), signed(x.get("loss_drop")),
         signed(x.get("probe_shift"))] for x in m.top_examples])
    used_by = [v for v in snap.verdicts if any(c.get("measurement_id") == m.measurement_id
                                               for c in v.candidates)]
    if used_by:
        lines += ["", "## Verdicts that used it", ""]
        lines += [f"- {names.link('verdict', v.test_id, v.name)}: {v.verdict}" for v in used_by]
    return head + "\n" + "\n".join(lines) + "\n"


def verdict_note(snap: Snapshot, names: Names, v: VerdictFact) -> str:
    head = front_matter(snap, ["knobs/verdict"], v.span,
                        [_event_source(v.event.position, "HypothesisTested", v.event.event_id)],
                        extra={"verdict": v.verdict, "test_id": v.test_id})
    lines = [f"# {esc(v.name)}: {v.verdict}", "",
             "Does the volatility of a data set, measured before training on it, predict what training on it "
             "learns, generalises and forgets? Spearman correlation across the candidate data sets, with a "
             f"bootstrap interval over seeds. `knobs audit {v.test_id}` traces it to every measurement.", "",
             "## Correlations", ""]
    lines += md_table(["Outcome", "Spearman", "95% interval", "Expected sign", "Verdict"], [
        [esc(str(c["outcome"])), signed(c.get("spearman")), ci_text(tuple(c["ci"]) if c.get("ci") else None),
         "+" if c.get("expected_sign", 0) > 0 else "-", str(c["verdict"])] for c in v.correlations])
    lines += ["", "## Candidates", ""]
    measured = {m.measurement_id for m in snap.measurements}
    lines += md_table(["Candidate", "Volatility", "Measurement"], [
        [esc(str(c.get("name"))), num(c.get("volatility")),
         names.link("measurement", str(c["measurement_id"]), str(c["measurement_id"])[:8], table=True)
         if c.get("measurement_id") in measured else esc(str(c.get("measurement_id")))]
        for c in v.candidates])
    return head + "\n" + "\n".join(lines) + "\n"


def pair_title(p: PairFact) -> str:
    return f"{p.pair_set_name} - {p.pair_id}"


def pair_note(snap: Snapshot, names: Names, p: PairFact) -> str:
    """The pair, every lens it went through with what survived and why, its clouds, its accepted texts."""
    distillates = [d for c in p.clouds for d in c.distillates]
    accepted = [d for d in distillates if d.accepted]
    sources = [_event_source(c.distillation.position, "DistillationRequested", c.distillation.distillation_id)
               for c in p.clouds]
    sources += _evidence_source([d.position for d in distillates], "DistillateGenerated")
    sources += _evidence_source([d.assessed_position for d in distillates if d.assessed_position is not None],
                                "DistillateAssessed")
    head = front_matter(snap, ["knobs/pair"], p.span, sources, aliases=[p.pair_id],
                        extra={"pair": p.pair_id, "pair_set": p.pair_set, "qapair": p.node_id,
                               "distillates": len(distillates), "accepted": len(accepted)})
    check = ("a known answer: each distillate must still contain it" if p.known_answer else
             "no known answer: each distillate must stay close to it in meaning")
    lines = [f"# {esc(pair_title(p))}", "", f"**Question.** {esc(p.question)}", "",
             f"**Answer.** {esc(p.answer)} ({check})", "",
             f"From `{esc(p.pair_set_name)}` (pair set {p.pair_set[:12]}). `knobs export cloud` writes the "
             "accepted distillates as a training corpus.", "", "## Lenses", ""]
    rows = []
    for c in p.clouds:
        by_lens: dict[tuple[str, str], list[Any]] = {}
        for d in c.distillates:
            by_lens.setdefault((d.generated.lens, d.generated.lens_version), []).append(d)
        for (name, version), ds in by_lens.items():
            lens = c.distillation.lenses.get(f"{name}@{version}")
            reasons = Counter(r for d in ds if d.assessed is not None for r in d.assessed.reasons)
            shown = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
            rows.append([esc(name), esc(lens.family) if lens else "-", version,
                         c.distillation.distillation_id[:8], str(len(ds)), str(sum(d.accepted for d in ds)),
                         shown or "-"])
    lines += md_table(["Lens", "Family", "Version", "Distillation", "Generated", "Accepted", "Rejected for"],
                      rows)
    lines += ["", "## Clouds", ""]
    lines += md_table(["Distillation", "Model", "Engine", "Generated", "Accepted", "Diversity", "Vendi"], [
        [c.distillation.distillation_id[:8], esc(c.distillation.request.model), c.distillation.request.engine,
         str(len(c.distillates)), str(sum(d.accepted for d in c.distillates)),
         num(c.cloud["diversity"]) if c.cloud else "-", num(c.cloud["vendi"]) if c.cloud else "-"]
        for c in p.clouds])
    lines += ["", "## Accepted distillates", ""]
    for d in accepted:
        g = d.generated
        lines += [f"- **{esc(g.lens)}** (sample {g.sample}, distillation {g.distillation_id[:8]}): "
                  f"{esc(g.text)}"]
    if not accepted:
        lines += ["- none yet"]
    return head + "\n" + "\n".join(lines) + "\n"


def index_note(snap: Snapshot, names: Names) -> str:
    sources = [f"log 1..{snap.log_head}"] if snap.log_head else []
    head = front_matter(snap, ["knobs/index"], snap.span, sources, extra={"log_head": snap.log_head})
    lines = [
        "# knobs: which knobs matter",
        "",
        f"Exported from the knobs event log up to position {snap.log_head}. Every note is regenerated by "
        "`knobs export notes`; edits to them are overwritten, so keep your own notes beside them.",
        "",
        "## Experiments",
        "",
    ]
    lines += [f"- {names.link('experiment', e.name)}: runs {e.runs}, benchmarks {len(e.benchmarks)}, "
              f"rankings {len(e.rankings)}" for e in snap.experiments] or ["- none"]
    lines += ["", "## Benchmarks", ""]
    lines += [f"- {names.link('benchmark', b.name)}" for b in snap.benchmarks] or ["- none"]
    lines += ["", "## Parameters", ""]
    lines += [f"- {names.link('parameter', p.name)}" for p in snap.parameters] or ["- none"]
    lines += ["", "## Data sets", ""]
    lines += [f"- {names.link('dataset', d.name)}" for d in snap.datasets] or ["- none"]
    lines += ["", "## Rankings", ""]
    lines += [f"- {names.link('ranking', r.ranking.ranking_id, ranking_title(r))}"
              for r in snap.rankings] or ["- none"]
    if snap.measurements or snap.verdicts:
        lines += ["", "## Shift measurements", ""]
        lines += [f"- {names.link('measurement', m.measurement_id, measurement_title(m))}: volatility "
                  f"{num(m.figures.get('volatility'))}" for m in snap.measurements] or ["- none"]
        lines += ["", "## Hypothesis verdicts", ""]
        lines += [f"- {names.link('verdict', v.test_id, v.name)}: {v.verdict}"
                  for v in snap.verdicts] or ["- none"]
    if snap.pairs:
        lines += ["", "## Distilled pairs", ""]
        lines += [f"- {names.link('pair', p.node_id, pair_title(p))}: "
                  f"{sum(d.accepted for c in p.clouds for d in c.distillates)} accepted distillates"
                  for p in snap.pairs]
    return head + "\n" + "\n".join(lines) + "\n"


def render_vault(snap: Snapshot, ranking_figure: RankingFigure | None = None) -> dict[str, str]:
    """Every note (and, with `ranking_figure`, each ranking's tornado SVG) by its path relative to the
    vault (POSIX separators), sorted."""
    names = Names(snap)
    files: dict[str, str] = {"index.md": index_note(snap, names)}
    for e in snap.experiments:
        files[names.path("experiment", e.name)] = experiment_note(snap, names, e)
    for b in snap.benchmarks:
        files[names.path("benchmark", b.name)] = benchmark_note(snap, names, b)
    for p in snap.parameters:
        files[names.path("parameter", p.name)] = parameter_note(snap, names, p)
    for d in snap.datasets:
        files[names.path("dataset", d.name)] = dataset_note(snap, names, d)
    for r in snap.rankings:
        figure = None
        if ranking_figure is not None:
            figure = figure_name(r)
            files[f"{FIGURES}/{figure}"] = ranking_figure(r.ranking)
        files[names.path("ranking", r.ranking.ranking_id)] = ranking_note(snap, names, r, figure=figure)
    for m in snap.measurements:
        files[names.path("measurement", m.measurement_id)] = measurement_note(snap, names, m)
    for v in snap.verdicts:
        files[names.path("verdict", v.test_id)] = verdict_note(snap, names, v)
    for pair in snap.pairs:
        files[names.path("pair", pair.node_id)] = pair_note(snap, names, pair)
    return dict(sorted(files.items()))


# ----------------------------------------------------------------------- writing


@dataclass(frozen=True)
class NotesExported:
    directory: Path
    log_head: int
    notes: dict[str, int]
    """How many notes of each kind (experiments, benchmarks, ...)."""
    written: int
    unchanged: int
    removed: list[str]
    figures: int = 0
    """Figures written beside the notes (Figures/*.svg)."""

    def public(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "log_head": self.log_head, "notes": self.notes,
                "figures": self.figures, "written": self.written, "unchanged": self.unchanged,
                "removed": self.removed}


def _previous_files(directory: Path, force: bool) -> list[str]:
    """What the last export wrote here; refuses a non-empty folder it did not write (unless forced)."""
    manifest = directory / MANIFEST
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise BadInput(f"{directory} exists and is not a folder: give a folder for the vault")
    if not manifest.exists():
        if any(directory.iterdir()) and not force:
            raise BadInput(
                f"{directory} is not empty and holds no {MANIFEST} from an earlier export: give an empty "
                "or new folder, or --force to write into it (files not written by knobs are never removed)"
            )
        return []
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        files = data["files"]
        if data.get("format") != MANIFEST_FORMAT or not isinstance(files, list):
            raise ValueError("not a knobs notes manifest")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if force:
            return []
        raise BadInput(f"{manifest} is unreadable ({exc}): remove it, or use --force to write anyway "
                       "(no file will be removed)") from exc
    # Only paths shaped like ours: a tampered manifest must not make us delete anything else.
    return sorted(f for f in files if isinstance(f, str) and _OUR_PATH.match(f))


def write_vault(
    directory: Path, files: dict[str, str], log_head: int, *, force: bool = False
) -> NotesExported:
    """Write `files` under `directory`, removing the notes an earlier export wrote that are gone."""
    previous = _previous_files(directory, force)
    directory.mkdir(parents=True, exist_ok=True)
    # Stale notes go first: on a case-insensitive disk a renamed note may share its old path.
    removed = []
    for rel in previous:
        if rel in files:
            continue
        path = directory / rel
        if path.is_file():
            path.unlink()
            removed.append(rel)
    written = unchanged = 0
    for rel, text in files.items():
        path = directory / rel
        data = text.encode("utf-8")
        if path.is_file() and path.read_bytes() == data:
            unchanged += 1
            continue
        _atomic_write(path, data)
        written += 1
    for folder in (*FOLDERS.values(), FIGURES):
        sub = directory / folder
        if sub.is_dir() and not any(sub.iterdir()):
            sub.rmdir()
    manifest = {"format": MANIFEST_FORMAT, "version": 1, "log_head": log_head, "files": sorted(files)}
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    _atomic_write(directory / MANIFEST, text.encode("utf-8"))
    counts = Counter(rel.split("/", 1)[0] for rel in files if "/" in rel)
    notes = {folder.lower(): counts.get(folder, 0) for folder in FOLDERS.values()}
    return NotesExported(directory, log_head, notes, written, unchanged, removed, counts.get(FIGURES, 0))


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def export_notes(ctx: Context, directory: Path, *, force: bool = False,
                 ranking_figure: RankingFigure | None = None) -> NotesExported:
    """Gather the facts once, render every note (and each ranking's figure, when given how to draw
    it), write them (see `write_vault`)."""
    snap = build(ctx)
    return write_vault(directory, render_vault(snap, ranking_figure), snap.log_head, force=force)
