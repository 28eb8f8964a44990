// The influence range of one parameter: its effects in every latest ranking that ranks it.
// For each experiment, benchmark and method, the latest ranking is the current one: what-if
// rankings (recomputed `--without` some runs) are left out, then the newest evidence (highest
// as_of) wins, ties going to the one recorded last (highest log position). A row for each
// current ranking that ranks $parameter: its rank, the [lo, hi] range of its effects
// (baseline = 0, in the benchmark's units), the statistic it was ranked by, its noise
// verdict, its knee and the values tried.
// An older ranking superseded by one that no longer ranks the parameter gives no row.
// Parameters: $parameter (parameter name), $benchmark (optional: benchmark name; null = every
// benchmark).
// Columns: parameter, experiment, benchmark, method, ranking_id, rank, ranked (how many
// parameters the ranking ranks), influence_lo, influence_hi, statistic, noise_label,
// knee_status, knee_value, knee (JSON: status, per, value, ci, axis, model, threshold,
// explored, detail), values (JSON: per value tried, mean, effect, ci, n, runs, cost),
// direction (lower or higher is better).
MATCH (k:Ranking)
WHERE ($benchmark IS NULL OR k.benchmark = $benchmark)
  AND NOT coalesce(k.what_if, false)
WITH k ORDER BY k.as_of DESC, k.positions[-1] DESC
WITH k.experiment AS experiment, k.benchmark AS benchmark, k.method AS method, collect(k)[0] AS k
MATCH (k)-[rk:RANKS]->(p:Parameter {id: $parameter})
CALL (k) {
  MATCH (k)-[:RANKS]->(q:Parameter)
  RETURN count(q) AS ranked
}
RETURN p.name AS parameter,
       experiment,
       benchmark,
       method,
       k.id AS ranking_id,
       rk.rank AS rank,
       ranked,
       rk.influence_lo AS influence_lo,
       rk.influence_hi AS influence_hi,
       rk.statistic AS statistic,
       rk.noise_label AS noise_label,
       rk.knee_status AS knee_status,
       rk.knee_value AS knee_value,
       rk.knee AS knee,
       rk.values AS values,
       k.direction AS direction
ORDER BY benchmark, experiment, method
