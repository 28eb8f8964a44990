// Rankings, newest first: what has been ranked, by which method, from how much evidence.
// Every ranking in the graph (superseded and what-if ones too), filtered by whichever of
// $experiment, $benchmark and $method is not null. `latest` says which are current: for its
// experiment, benchmark and method, what-if rankings (recomputed `--without` some runs) are
// left out, then the newest evidence (highest as_of) wins, ties going to the one recorded last
// (highest log position). A what-if ranking is never latest, even when it is the only one.
// Parameters: $experiment (optional: experiment name; null = any), $benchmark (optional:
// benchmark name; null = any), $method (optional: ofat, morris or sobol; null = any).
// Columns: ranking_id, experiment, benchmark, method, direction, as_of (the log position it
// was computed at), code_version, used_events (how many events it used), excluded_runs,
// parameters (how many it ranks), top (the rank-1 parameter), position (log position of its
// RankingDerived event), what_if (recomputed without some runs), latest.
MATCH (k:Ranking)
WHERE ($experiment IS NULL OR k.experiment = $experiment)
  AND ($benchmark IS NULL OR k.benchmark = $benchmark)
  AND ($method IS NULL OR k.method = $method)
// The filters keep or drop whole (experiment, benchmark, method) groups, so the latest in
// each group is found among the rows kept.
WITH k ORDER BY k.as_of DESC, k.positions[-1] DESC
WITH k.experiment AS experiment, k.benchmark AS benchmark, k.method AS method, collect(k) AS rankings
WITH experiment, benchmark, method, rankings,
     [r IN rankings WHERE NOT coalesce(r.what_if, false)][0] AS current
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
       coalesce(k.what_if, false) AS what_if,
       current IS NOT NULL AND k.id = current.id AS latest
ORDER BY position DESC, ranking_id
