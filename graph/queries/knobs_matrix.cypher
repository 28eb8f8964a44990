// Parameters x benchmarks for one experiment: each parameter's rank on every benchmark.
// For each benchmark, the experiment's latest ranking with method $method, or of any method
// when $method is null: what-if rankings (recomputed `--without` some runs) are left out,
// then the newest evidence (highest as_of) wins, ties going to the one recorded last (highest
// log position). One row per (parameter, benchmark) cell. A parameter a benchmark's ranking
// does not rank has no row for that benchmark.
// Parameters: $experiment (experiment name), $method (optional: ofat, morris or sobol; null
// = the newest ranking of any method per benchmark).
// Columns: parameter, benchmark, rank, ranked (how many parameters that ranking ranks),
// statistic, noise_label, influence_lo, influence_hi, flagged, direction, method, ranking_id.
MATCH (k:Ranking)-[:ABOUT]->(:Experiment {id: $experiment})
WHERE ($method IS NULL OR k.method = $method)
  AND NOT coalesce(k.what_if, false)
WITH k ORDER BY k.as_of DESC, k.positions[-1] DESC
WITH k.benchmark AS benchmark, collect(k)[0] AS k
CALL (k) {
  MATCH (k)-[:RANKS]->(q:Parameter)
  RETURN count(q) AS ranked
}
MATCH (k)-[rk:RANKS]->(p:Parameter)
RETURN p.name AS parameter,
       benchmark,
       rk.rank AS rank,
       ranked,
       rk.statistic AS statistic,
       rk.noise_label AS noise_label,
       rk.influence_lo AS influence_lo,
       rk.influence_hi AS influence_hi,
       rk.flagged AS flagged,
       k.direction AS direction,
       k.method AS method,
       k.id AS ranking_id
ORDER BY parameter, benchmark
