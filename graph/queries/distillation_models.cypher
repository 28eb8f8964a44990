// Which model produced which distillates: per model and engine, counts, survival and tokens.
// One row per (model, engine), most distillates first: the distillations and lenses it wrote
// through, distillates generated, assessed and accepted, survival = accepted / assessed, the
// tokens it cost (prompt and completion, as the server reported them), how many answers came
// from the cache, requests sent (retries included) and mean latency per distillate.
// Parameters: $distillation (optional: one distillation id; default every distillation).
// Columns: model, engine, distillations, lenses, distillates, assessed, accepted, survival,
// prompt_tokens, completion_tokens, cached, requests, mean_latency_s.
MATCH (x:Distillate)-[:GENERATED_BY]->(m:Model)
WHERE $distillation IS NULL OR x.distillation_id = $distillation
WITH m, x.engine AS engine, count(x) AS distillates, count(x.accepted) AS assessed,
     sum(CASE WHEN x.accepted THEN 1 ELSE 0 END) AS accepted,
     sum(x.prompt_tokens) AS prompt_tokens, sum(x.completion_tokens) AS completion_tokens,
     sum(CASE WHEN x.cached THEN 1 ELSE 0 END) AS cached, sum(x.attempts) AS requests,
     avg(x.latency_s) AS mean_latency_s
CALL (m, engine) {
  MATCH (y:Distillate)-[:GENERATED_BY]->(m)
  WHERE y.engine = engine AND ($distillation IS NULL OR y.distillation_id = $distillation)
  WITH DISTINCT y.distillation_id AS run
  ORDER BY run
  RETURN collect(run) AS distillations
}
CALL (m, engine) {
  MATCH (y:Distillate)-[:GENERATED_BY]->(m)
  WHERE y.engine = engine AND ($distillation IS NULL OR y.distillation_id = $distillation)
  WITH DISTINCT y.lens + '@' + y.lens_version AS lens
  ORDER BY lens
  RETURN collect(lens) AS lenses
}
RETURN m.name AS model,
       engine,
       distillations,
       lenses,
       distillates,
       assessed,
       accepted,
       CASE WHEN assessed = 0 THEN null ELSE toFloat(accepted) / assessed END AS survival,
       prompt_tokens,
       completion_tokens,
       cached,
       requests,
       mean_latency_s
ORDER BY distillates DESC, model, engine
