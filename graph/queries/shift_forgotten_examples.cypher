// The training documents forgotten most: forgetting events recorded inside training, most first.
// A run whose spec sets influence_every tracks a sample of its training documents; a
// forgetting event is a document the model got right at one recording and wrong at the next
// (Toneva et al. 2019). Cartography beside it (Swayamdipta et al. 2020): confidence (mean
// probability of the gold tokens), variability (its std over recordings), correctness.
// Parameters: $experiment (optional: one experiment), $limit (optional: at most this many
// rows, default 20).
// Columns: experiment, run_id, index, text, forgetting_events, never_learned, confidence,
// variability, correctness, recordings, final_loss, final_grad_norm, positions and event_ids
// (the TrainingInfluenceRecorded event).
MATCH (x:Example)-[t:TRACKED_IN]->(r:Run)
WHERE $experiment IS NULL OR r.experiment = $experiment
RETURN r.experiment AS experiment,
       r.run_id AS run_id,
       x.index AS index,
       x.text AS text,
       t.forgetting_events AS forgetting_events,
       t.never_learned AS never_learned,
       t.confidence AS confidence,
       t.variability AS variability,
       t.correctness AS correctness,
       t.recordings AS recordings,
       t.final_loss AS final_loss,
       t.final_grad_norm AS final_grad_norm,
       t.positions AS positions,
       t.event_ids AS event_ids
ORDER BY forgetting_events DESC, correctness, experiment, run_id, index
LIMIT coalesce($limit, 20)
