// The examples of a data set that move the model most: largest grad_norm first.
// Every measurement of the data set (or only $measurement) contributes its rows, so the same
// example measured on two model states appears twice, each with the model it was measured on.
// Parameters: $dataset (the data set's sha256 or its file name), $measurement (optional: one
// measurement id), $limit (optional: at most this many rows, default 20).
// Columns: example_id, grad_norm, loss_before, loss_drop, probe_shift, hidden_shift,
// update_norm, alignment, measurement_id, model_ref, dataset_name, chunk, tokens_sha256,
// positions and event_ids (the ShiftMeasured event behind the row).
MATCH (m:Measurement)-[:MEASURED_ON]->(d:Dataset)
WHERE (d.id = $dataset OR d.name = $dataset)
  AND ($measurement IS NULL OR m.id = $measurement)
MATCH (m)-[me:MEASURED]->(x:Example)
RETURN x.example_id AS example_id,
       me.grad_norm AS grad_norm,
       me.loss_before AS loss_before,
       me.loss_drop AS loss_drop,
       me.probe_shift AS probe_shift,
       me.hidden_shift AS hidden_shift,
       me.update_norm AS update_norm,
       me.alignment AS alignment,
       m.id AS measurement_id,
       m.model_ref AS model_ref,
       d.name AS dataset_name,
       me.chunk AS chunk,
       me.tokens_sha256 AS tokens_sha256,
       me.positions AS positions,
       me.event_ids AS event_ids
ORDER BY grad_norm DESC, example_id
LIMIT coalesce($limit, 20)
