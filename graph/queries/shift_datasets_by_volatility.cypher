// Data sets ranked by volatility: how unevenly their examples move the model they were measured on.
// One row per finished measurement (its DatasetShiftMeasured), most volatile first;
// volatility = pstdev(grad_norm) / mean(grad_norm), coherence = net_shift / total_shift.
// Parameters: $model (optional: a model's ref, e.g. '<experiment>/<run_id>', or its sha256).
// Columns: dataset_name, dataset, examples, model_ref, measurement_id, volatility, total_shift,
// net_shift, coherence, noise_scale, grad_norm_p50, grad_norm_p90, grad_norm_max, probe_loss,
// positions and event_ids (the DatasetShiftMeasured event), used_positions (its chunks).
MATCH (v:Volatility)-[:SUMMARIZES]->(m:Measurement)-[:MEASURED_ON]->(d:Dataset)
WHERE $model IS NULL OR m.model_ref = $model OR m.model_sha256 = $model
RETURN d.name AS dataset_name,
       d.id AS dataset,
       v.examples AS examples,
       m.model_ref AS model_ref,
       m.id AS measurement_id,
       v.volatility AS volatility,
       v.total_shift AS total_shift,
       v.net_shift AS net_shift,
       v.coherence AS coherence,
       v.noise_scale AS noise_scale,
       v.grad_norm_p50 AS grad_norm_p50,
       v.grad_norm_p90 AS grad_norm_p90,
       v.grad_norm_max AS grad_norm_max,
       v.probe_loss AS probe_loss,
       v.positions AS positions,
       v.event_ids AS event_ids,
       v.used_positions AS used_positions
ORDER BY volatility DESC, dataset_name, measurement_id
