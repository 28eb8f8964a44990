// The cloud of one question-answer pair: every distillate of it, with its lens and its verdict.
// One row per distillate, by distillation, lens, version and sample: accepted or not with every
// reason, the distillate it duplicates (its id) and their cosine, its similarity to the source,
// its text, the model and engine that wrote it, and the figures of its cloud (generated,
// accepted, diversity = mean pairwise cosine distance of the accepted, Vendi score) once the
// cloud is assessed. A distillate not yet assessed has accepted null.
// Parameters: $pair (the pair's own id from its file, or its QAPair id '<pair set digest>:<id>'),
// $distillation (optional: one distillation id).
// Columns: distillation_id, pair, pair_id, question, answer, lens, version, family, sample,
// accepted, reasons, similarity, duplicate_of, duplicate_cosine, text, model, engine,
// distillate_id, cloud_generated, cloud_accepted, cloud_diversity, cloud_vendi, positions and
// event_ids (its DistillateGenerated and DistillateAssessed).
MATCH (q:QAPair)
WHERE q.pair_id = $pair OR q.id = $pair
MATCH (x:Distillate)-[:OF]->(q)
WHERE $distillation IS NULL OR x.distillation_id = $distillation
MATCH (x)-[:THROUGH]->(l:Lens)
OPTIONAL MATCH (c:Cloud)-[:OF]->(q)
WHERE c.distillation_id = x.distillation_id
RETURN x.distillation_id AS distillation_id,
       q.id AS pair,
       q.pair_id AS pair_id,
       q.question AS question,
       q.answer AS answer,
       l.name AS lens,
       l.version AS version,
       l.family AS family,
       x.sample AS sample,
       x.accepted AS accepted,
       x.reasons AS reasons,
       x.similarity AS similarity,
       x.duplicate_of AS duplicate_of,
       x.duplicate_cosine AS duplicate_cosine,
       x.text AS text,
       x.model AS model,
       x.engine AS engine,
       x.id AS distillate_id,
       c.generated AS cloud_generated,
       c.accepted AS cloud_accepted,
       c.diversity AS cloud_diversity,
       c.vendi AS cloud_vendi,
       x.positions AS positions,
       x.event_ids AS event_ids
ORDER BY distillation_id, pair, lens, version, sample
