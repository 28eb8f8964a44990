// Under-used high-leverage parameters: those the latest rankings flag, with each flag's reason.
// For each experiment, benchmark and method, the latest ranking: what-if rankings (recomputed
// `--without` some runs) are left out, then the newest evidence (highest as_of) wins, ties
// going to the one recorded last (highest log position). One row per parameter it flags: high
// effect (or effect per cost) with a narrow explored range, few runs, the best value at the
// edge of the range, or the baseline far from the best. `knobs suggest` turns these into a
// follow-up experiment.
// Parameters: $benchmark (optional: benchmark name; null = every benchmark), $experiment
// (optional: experiment name; null = every experiment).
// Columns: experiment, benchmark, method, ranking_id, parameter, rank, statistic,
// noise_label, flag_kinds (list: narrow_range, few_runs, best_at_edge,
// baseline_far_from_best), flags (JSON: list of {kind, reason}), per_cost (JSON: list of
// {kind, source, value, gain, extra_cost, per_unit, note}), direction.
MATCH (k:Ranking)
WHERE ($benchmark IS NULL OR k.benchmark = $benchmark)
  AND ($experiment IS NULL OR k.experiment = $experiment)
  AND NOT coalesce(k.what_if, false)
WITH k ORDER BY k.as_of DESC, k.positions[-1] DESC
WITH k.experiment AS experiment, k.benchmark AS benchmark, k.method AS method, collect(k)[0] AS k
MATCH (k)-[rk:RANKS]->(p:Parameter)
WHERE rk.flagged
RETURN experiment,
       benchmark,
       method,
       k.id AS ranking_id,
       p.name AS parameter,
       rk.rank AS rank,
       rk.statistic AS statistic,
       rk.noise_label AS noise_label,
       rk.flag_kinds AS flag_kinds,
       rk.flags AS flags,
       rk.per_cost AS per_cost,
       k.direction AS direction
ORDER BY experiment, benchmark, method, rank, parameter
