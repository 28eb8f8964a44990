// What a hypothesis verdict was derived from: each candidate's volatility and its measurement.
// One row per candidate: the Volatility the verdict cites, its measurement, the model state
// and data set measured, with the log positions and event ids at every step (the verdict's
// HypothesisTested, the DatasetShiftMeasured, and the chunk events it summarised).
// Parameters: $verdict (the verdict's test id; `knobs shift verdicts` lists them).
// Columns: verdict, name, candidate, volatility, measurement_id, model_ref, model_sha256,
// dataset_name, dataset, examples, verdict_positions, volatility_positions,
// volatility_event_ids, chunk_positions, correlations (JSON).
MATCH (h:Verdict {id: $verdict})-[df:WAS_DERIVED_FROM]->(v:Volatility)-[:SUMMARIZES]->(m:Measurement)
MATCH (m)-[:MEASURED_ON]->(d:Dataset)
OPTIONAL MATCH (m)-[:USED_MODEL]->(s:ModelState)
RETURN h.verdict AS verdict,
       h.name AS name,
       df.candidate AS candidate,
       v.volatility AS volatility,
       m.id AS measurement_id,
       m.model_ref AS model_ref,
       s.id AS model_sha256,
       d.name AS dataset_name,
       d.id AS dataset,
       v.examples AS examples,
       h.positions AS verdict_positions,
       v.positions AS volatility_positions,
       v.event_ids AS volatility_event_ids,
       v.used_positions AS chunk_positions,
       h.correlations AS correlations
ORDER BY volatility DESC, candidate
