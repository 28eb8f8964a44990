"""Several recorded rankings of one experiment (one RankingDerived per benchmark) as a
parameters x benchmarks heat map: each cell the knob's rank on that benchmark and its strength,
the cells where the benchmarks disagree about a knob outlined. Disagreement is what
services/ranking/matrix.py says it is (the same rules `knobs rank --all-benchmarks` prints),
read from the recorded events, never recomputed from runs."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from events.models.rankings import ParameterRanking, RankingDerived
from services.figures.model import Heatmap, Provenance
from services.ranking.analysis.direction import gain
from services.ranking.matrix import Disagreement, matrix_rows, ranking_disagreements


def matrix_json_url(experiment: str, method: str | None = None) -> str:
    url = f"/v1/experiments/{quote(experiment, safe='')}/matrix"
    return url + (f"?method={quote(method)}" if method else "")


def _strength(p: ParameterRanking) -> float:
    """What the rank orders by (influence width, mu_star or ST); the range's width when not recorded."""
    if p.statistic is not None:
        return abs(p.statistic)
    return abs(p.influence_range[1] - p.influence_range[0])


def _best_gain(ranking: RankingDerived, p: ParameterRanking) -> float | None:
    """The gain (positive = better) of the knob's best value over the baseline; None without values."""
    gains = [gain(v.effect, ranking.direction or "higher") for v in p.values if not v.is_baseline]
    return max(gains) + 0.0 if gains else None  # + 0.0: no "-0" on a cell


def heatmap(experiment: str, rankings: Mapping[str, RankingDerived],
            found: list[Disagreement] | None = None, method: str | None = None) -> Heatmap:
    """Rows: parameters in aggregate order (mean rank); columns: benchmarks. A cell's colour is
    the knob's strength over the strongest knob on that benchmark, blue where one of its values
    beats the baseline and red where every value tried is worse (one at a time; Morris and Sobol
    have no baseline, so their cells are strength only); its label the rank (~ when
    indistinguishable from noise) and the best value's gain. Cells outlined: the benchmarks of each
    disagreement (`found`, else computed by services/ranking/matrix.py). `method`, when the
    rankings were chosen by method, goes into the JSON link."""
    columns = sorted(rankings)
    rows = [r.parameter for r in matrix_rows(rankings)]
    found = ranking_disagreements(rankings) if found is None else found
    values: list[list[float | None]] = []
    labels: list[list[str]] = []
    for name in rows:
        row_values: list[float | None] = []
        row_labels: list[str] = []
        for b in columns:
            ranking = rankings[b]
            p = next((q for q in ranking.parameters if q.name == name), None)
            if p is None:
                row_values.append(None)
                row_labels.append("not ranked")
                continue
            top = max((_strength(q) for q in ranking.parameters), default=0.0)
            size = _strength(p) / top if top > 0 else 0.0
            best = _best_gain(ranking, p) if ranking.method == "ofat" else None
            row_values.append(round(-size if best is not None and best <= 0 else size, 4))
            noisy = "~" if p.noise is not None and p.noise.label == "indistinguishable" else ""
            row_labels.append(f"#{p.rank}{noisy}" + (f" {best:+.3g}" if best is not None else ""))
        values.append(row_values)
        labels.append(row_labels)
    index = {name: i for i, name in enumerate(rows)}
    marked = sorted({(index[d.parameter], columns.index(b)) for d in found
                     if d.parameter in index for b in d.benchmarks if b in columns})
    about = {"experiment": experiment, "benchmarks": ", ".join(columns),
             "rankings": ", ".join(rankings[b].ranking_id for b in columns)}
    note = ("Cell: the knob's rank on the benchmark (~ = indistinguishable from noise) and its best value's "
            "gain over the baseline (+ is better). Colour: strength against the benchmark's strongest knob, "
            "blue where a value tried beats the baseline, red where every value tried is worse. "
            "Outlined: the benchmarks disagree about the knob.")
    return Heatmap(provenance=Provenance(title=f"Which knobs matter where in {experiment}", about=about,
                                         json_url=matrix_json_url(experiment, method)),
                   rows=rows, columns=columns, values=values, labels=labels, marked=marked, note=note)
