// Runs of an experiment scored on a benchmark, with the events behind each number.
// One row per run that has a score on $benchmark: its parameters, seed, source, costs and
// score, with the log positions and event ids of its RunRecorded and BenchmarkScored
// events, so that a ranking computed from these rows can list exactly the events it used.
// Parameters: $experiment (experiment name), $benchmark (benchmark name).
// Columns: run_id, params and costs (lists of [name, value] pairs sorted by name: Cypher
// without APOC cannot build a map with dynamic keys; dict(pairs) gives the map), seed,
// source_id, value, n, stderr, run_positions, run_event_ids, score_positions, score_event_ids.
MATCH (:Experiment {id: $experiment})<-[:PART_OF]-(r:Run)<-[:WAS_GENERATED_BY]-(s:Score)
WHERE s.benchmark = $benchmark
CALL (r) {
  MATCH (r)-[:USED_VALUE]->(v:ParameterValue)
  WITH v ORDER BY v.name
  RETURN collect([v.name, v.value]) AS params
}
CALL (r) {
  UNWIND keys(r) AS key
  WITH key WHERE key STARTS WITH 'cost_'
  ORDER BY key
  RETURN collect([substring(key, 5), r[key]]) AS costs
}
RETURN r.run_id AS run_id,
       params,
       r.seed AS seed,
       r.source_id AS source_id,
       costs,
       s.value AS value,
       s.n AS n,
       s.stderr AS stderr,
       r.positions AS run_positions,
       r.event_ids AS run_event_ids,
       s.positions AS score_positions,
       s.event_ids AS score_event_ids
ORDER BY run_id
