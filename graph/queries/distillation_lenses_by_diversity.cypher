// Lenses by the diversity they add to clouds: new, far-from-the-source distillates per output.
// One row per lens version, most diversity added first. From what the assessments carry: a
// distillate rejected as a duplicate (cosine above the distillation's duplicate_cosine to one
// already in its pair's cloud) adds nothing; an accepted one adds its cosine distance from the
// source pair, 1 - similarity. diversity_added = sum of those distances / (accepted +
// duplicates): the spread one more non-failing output of the lens brings, on average. Its
// parts: novelty = accepted / (accepted + duplicates), mean_distance = mean 1 - similarity of
// the accepted. repeats_other_lenses counts its duplicates of another lens's distillates;
// repeated_by_other_lenses, other lenses' duplicates of its own. Outputs that failed another
// check (refusal, too short, answer missing, ...) count in neither: survival says how often.
// Parameters: $distillation (optional: one distillation id; default every distillation).
// Columns: lens, version, family, assessed, accepted, duplicates, novelty, mean_distance,
// diversity_added, clouds (pairs' clouds it has an accepted distillate in),
// repeats_other_lenses, repeated_by_other_lenses.
MATCH (x:Distillate)-[:THROUGH]->(l:Lens)
WHERE ($distillation IS NULL OR x.distillation_id = $distillation) AND x.accepted IS NOT NULL
WITH l, count(x) AS assessed,
     sum(CASE WHEN x.accepted THEN 1 ELSE 0 END) AS accepted,
     sum(CASE WHEN 'duplicate' IN x.reasons THEN 1 ELSE 0 END) AS duplicates,
     sum(CASE WHEN x.accepted THEN 1.0 - x.similarity ELSE 0.0 END) AS spread,
     count(DISTINCT CASE WHEN x.accepted THEN x.distillation_id + '/' + x.pair_id END) AS clouds
CALL (l) {
  OPTIONAL MATCH (y:Distillate)-[:THROUGH]->(l), (y)-[:DUPLICATE_OF]->(:Distillate)-[:THROUGH]->(m:Lens)
  WHERE m.name <> l.name AND ($distillation IS NULL OR y.distillation_id = $distillation)
  RETURN count(y) AS repeats_other_lenses
}
CALL (l) {
  OPTIONAL MATCH (y:Distillate)-[:DUPLICATE_OF]->(:Distillate)-[:THROUGH]->(l), (y)-[:THROUGH]->(m:Lens)
  WHERE m.name <> l.name AND ($distillation IS NULL OR y.distillation_id = $distillation)
  RETURN count(y) AS repeated_by_other_lenses
}
WITH l, assessed, accepted, duplicates, spread, clouds, repeats_other_lenses, repeated_by_other_lenses,
     CASE WHEN accepted + duplicates = 0 THEN null ELSE spread / (accepted + duplicates) END AS diversity_added
RETURN l.name AS lens,
       l.version AS version,
       l.family AS family,
       assessed,
       accepted,
       duplicates,
       CASE WHEN accepted + duplicates = 0 THEN null ELSE toFloat(accepted) / (accepted + duplicates) END AS novelty,
       CASE WHEN accepted = 0 THEN null ELSE spread / accepted END AS mean_distance,
       diversity_added,
       clouds,
       repeats_other_lenses,
       repeated_by_other_lenses
ORDER BY coalesce(diversity_added, -1.0) DESC, lens, version
