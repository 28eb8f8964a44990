// Rankings that used a run, newest first: what to recompute when a run turns out wrong.
// A ranking used a run directly (USED_RUN) or through one of its scores (WAS_DERIVED_FROM).
// Parameters: $experiment (experiment name), $run_id (the run's id within it).
// Columns: ranking_id, experiment, benchmark, method, code_version, as_of,
// ranking_positions, ranking_event_ids.
MATCH (r:Run {id: $experiment + '/' + $run_id})
CALL (r) {
  MATCH (k:Ranking)-[:USED_RUN]->(r)
  RETURN k
  UNION
  MATCH (k:Ranking)-[:WAS_DERIVED_FROM]->(:Score)-[:WAS_GENERATED_BY]->(r)
  RETURN k
}
RETURN k.id AS ranking_id,
       k.experiment AS experiment,
       k.benchmark AS benchmark,
       k.method AS method,
       k.code_version AS code_version,
       k.as_of AS as_of,
       k.positions AS ranking_positions,
       k.event_ids AS ranking_event_ids
ORDER BY k.positions[-1] DESC
