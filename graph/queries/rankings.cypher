// Rankings, newest first: what has been ranked, by which method, from how much evidence.
// Every ranking in the graph (superseded ones too: `latest` says which are current, i.e.
// recorded last for their experiment, benchmark and method), filtered by whichever of
// $experiment, $benchmark and $method is not null.
// Parameters: $experiment (optional: experiment name; null = any), $benchmark (optional:
// benchmark name; null = any), $method (optional: ofat, morris or sobol; null = any).
// Columns: ranking_id, experiment, benchmark, method, direction, as_of (the log position it
// was computed at), code_version, used_events (how many events it used), excluded_runs,
// parameters (how many it ranks), top (the rank-1 parameter), position (log position of its
// RankingDerived event), latest.
MATCH (k:Ranking)
WHERE ($experiment IS NULL OR k.experiment = $experiment)
  AND ($benchmark IS NULL OR k.benchmark = $benchmark)
  AND ($method IS NULL OR k.method = $method)
// The filters keep or drop whole (experiment, benchmark, method) groups, so the newest in
// each group is found among the rows kept.
WITH k.experiment AS experiment, k.benchmark AS benchmark, k.method AS method,
     collect(k) AS rankings, max(k.positions[-1]) AS newest
UNWIND rankings AS k
CALL (k) {
  OPTIONAL MATCH (k)-[rk:RANKS]->(p:Parameter)
  WITH p, rk ORDER BY rk.rank, p.name
  RETURN count(p) AS parameters, head(collect(p.name)) AS top
}
RETURN k.id AS ranking_id,
       experiment,
       benchmark,
       method,
       k.direction AS direction,
       k.as_of AS as_of,
       k.code_version AS code_version,
       size(k.used_positions) AS used_events,
       k.excluded_runs AS excluded_runs,
       parameters,
       top,
       k.positions[-1] AS position,
       k.positions[-1] = newest AS latest
ORDER BY position DESC, ranking_id
