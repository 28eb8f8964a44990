// Experiments with their run counts, benchmarks, parameters, sources and rankings.
// Parameters: none.
// Columns: name, runs, scores, benchmarks (sorted), parameters (sorted), sources, rankings.
MATCH (e:Experiment)
CALL (e) {
  OPTIONAL MATCH (r:Run)-[:PART_OF]->(e)
  RETURN count(r) AS runs
}
CALL (e) {
  MATCH (s:Score)-[:WAS_GENERATED_BY]->(:Run)-[:PART_OF]->(e)
  RETURN count(DISTINCT s) AS scores
}
CALL (e) {
  MATCH (s:Score)-[:WAS_GENERATED_BY]->(:Run)-[:PART_OF]->(e)
  WITH DISTINCT s.benchmark AS benchmark ORDER BY benchmark
  RETURN collect(benchmark) AS benchmarks
}
CALL (e) {
  MATCH (v:ParameterValue)<-[:USED_VALUE]-(:Run)-[:PART_OF]->(e)
  WITH DISTINCT v.name AS parameter ORDER BY parameter
  RETURN collect(parameter) AS parameters
}
CALL (e) {
  MATCH (src:Source)<-[:REPORTED_IN]-(:Run)-[:PART_OF]->(e)
  RETURN count(DISTINCT src) AS sources
}
CALL (e) {
  OPTIONAL MATCH (k:Ranking)-[:ABOUT]->(e)
  RETURN count(k) AS rankings
}
RETURN e.name AS name, runs, scores, benchmarks, parameters, sources, rankings
ORDER BY name
