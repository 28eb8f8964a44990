// Where a ranking came from: its runs, scores, sources and the log positions behind them.
// The ranking, its parameters with ranks and influence ranges, and one row per run it was
// derived from, with that run's score, source and citation, and the log positions and
// event ids of every event behind them. A ranking with no evidence gives one row whose run
// columns are null.
// Parameters: $ranking_id (the ranking's id, as in its RankingDerived event).
// Columns: ranking_id, experiment, benchmark, method, code_version, as_of, baseline,
// baseline_mean, ranking_positions, ranking_event_ids, used_positions, parameters (list of
// maps: name, rank, influence_lo, influence_hi, values as JSON), run, run_id, params_json,
// run_positions, run_event_ids, score, value, stderr, score_positions, score_event_ids,
// source_id, citation, source_positions.
MATCH (k:Ranking {id: $ranking_id})
CALL (k) {
  MATCH (k)-[rk:RANKS]->(p:Parameter)
  WITH p, rk ORDER BY rk.rank, p.name
  RETURN collect({name: p.name, rank: rk.rank, influence_lo: rk.influence_lo,
                  influence_hi: rk.influence_hi, values: rk.values}) AS parameters
}
OPTIONAL CALL (k) {
  MATCH (k)-[:USED_RUN]->(r:Run)
  RETURN r
  UNION
  MATCH (k)-[:WAS_DERIVED_FROM]->(:Score)-[:WAS_GENERATED_BY]->(r:Run)
  RETURN r
}
OPTIONAL MATCH (k)-[:WAS_DERIVED_FROM]->(s:Score)-[:WAS_GENERATED_BY]->(r)
OPTIONAL MATCH (r)-[:REPORTED_IN]->(src:Source)
RETURN k.id AS ranking_id,
       k.experiment AS experiment,
       k.benchmark AS benchmark,
       k.method AS method,
       k.code_version AS code_version,
       k.as_of AS as_of,
       k.baseline AS baseline,
       k.baseline_mean AS baseline_mean,
       k.positions AS ranking_positions,
       k.event_ids AS ranking_event_ids,
       k.used_positions AS used_positions,
       parameters,
       r.id AS run,
       r.run_id AS run_id,
       r.params AS params_json,
       r.positions AS run_positions,
       r.event_ids AS run_event_ids,
       s.id AS score,
       s.value AS value,
       s.stderr AS stderr,
       s.positions AS score_positions,
       s.event_ids AS score_event_ids,
       src.id AS source_id,
       src.citation AS citation,
       src.positions AS source_positions
ORDER BY run_id, score
