// Which knobs make training volatile: the latest rankings on the training-volatility outcomes.
// A run that records per-example influence (influence_every in its spec) scores
// train_volatility (mean volatility over its recordings), train_volatility_final and
// train_forgetting; ranking an experiment on them (`knobs rank EXP --benchmark
// train_volatility`) is what this reads. Per experiment, method and benchmark the latest
// ranking (not a what-if one), then its parameters in rank order.
// Parameters: $benchmark (optional: one of train_volatility, train_volatility_final,
// train_forgetting; default all three).
// Columns: benchmark, experiment, method, ranking_id, parameter, rank, influence_lo,
// influence_hi, statistic, noise_label, values (JSON), direction.
MATCH (k:Ranking)-[:FOR_BENCHMARK]->(b:Benchmark)
WHERE b.id IN CASE WHEN $benchmark IS NULL
                   THEN ['train_volatility', 'train_volatility_final', 'train_forgetting']
                   ELSE [$benchmark] END
  AND NOT coalesce(k.what_if, false)
WITH b, k ORDER BY k.as_of DESC, k.positions[-1] DESC
WITH b.id AS benchmark, k.experiment AS experiment, k.method AS method, collect(k)[0] AS k
MATCH (k)-[rk:RANKS]->(p:Parameter)
RETURN benchmark,
       experiment,
       method,
       k.id AS ranking_id,
       p.name AS parameter,
       rk.rank AS rank,
       rk.influence_lo AS influence_lo,
       rk.influence_hi AS influence_hi,
       rk.statistic AS statistic,
       rk.noise_label AS noise_label,
       rk.values AS values,
       k.direction AS direction
ORDER BY benchmark, experiment, method, rank, parameter
