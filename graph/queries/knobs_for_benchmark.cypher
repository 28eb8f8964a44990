// Which knobs matter on a benchmark: the latest ranking's parameters, ranked.
// For each experiment and ranking method, the latest ranking for the benchmark: what-if
// rankings (recomputed `--without` some runs) are left out, then the one with the newest
// evidence (highest as_of) wins, ties going to the one recorded last (highest log position).
// One row per parameter with its rank, the statistic it was ranked by, its influence range,
// noise verdict and knee.
// Parameters: $benchmark (benchmark name).
// Columns: experiment, method, ranking_id, as_of, code_version, parameter, rank,
// influence_lo, influence_hi, values (JSON: per value tried, mean, effect, ci, n, runs),
// statistic (influence width for ofat, mu_star for morris, ST for sobol), noise_label
// (distinguishable, indistinguishable or unknown), knee_status, knee_value, flagged (a
// leverage flag: under-explored), direction (lower or higher is better). Properties a ranking
// recorded before they existed are null.
MATCH (k:Ranking)-[:FOR_BENCHMARK]->(:Benchmark {id: $benchmark})
WHERE NOT coalesce(k.what_if, false)
WITH k ORDER BY k.as_of DESC, k.positions[-1] DESC
WITH k.experiment AS experiment, k.method AS method, collect(k)[0] AS k
MATCH (k)-[rk:RANKS]->(p:Parameter)
RETURN experiment,
       method,
       k.id AS ranking_id,
       k.as_of AS as_of,
       k.code_version AS code_version,
       p.name AS parameter,
       rk.rank AS rank,
       rk.influence_lo AS influence_lo,
       rk.influence_hi AS influence_hi,
       rk.values AS values,
       rk.statistic AS statistic,
       rk.noise_label AS noise_label,
       rk.knee_status AS knee_status,
       rk.knee_value AS knee_value,
       rk.flagged AS flagged,
       k.direction AS direction
ORDER BY experiment, method, rank, parameter
