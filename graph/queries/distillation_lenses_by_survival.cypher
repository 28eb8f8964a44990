// Lenses by survival rate: the share of each lens version's assessed distillates that were accepted.
// One row per lens version (`name@version`: an edited lens is another row), best survival first.
// survival = accepted / assessed (null while none is assessed); reasons = why the rejected
// ones were dropped, as [reason, count] pairs, most frequent first (a distillate counts under
// each of its reasons; the reasons are REASONS of events/models/distillation.py).
// Parameters: $distillation (optional: one distillation id; default every distillation).
// Columns: lens, version, family, distillations, generated, assessed, accepted, rejected,
// survival, reasons, lens_positions and lens_event_ids (its LensDefined).
MATCH (x:Distillate)-[:THROUGH]->(l:Lens)
WHERE $distillation IS NULL OR x.distillation_id = $distillation
WITH l, count(x) AS generated, count(x.accepted) AS assessed,
     sum(CASE WHEN x.accepted THEN 1 ELSE 0 END) AS accepted,
     count(DISTINCT x.distillation_id) AS distillations
CALL (l) {
  MATCH (y:Distillate)-[:THROUGH]->(l)
  WHERE ($distillation IS NULL OR y.distillation_id = $distillation) AND y.accepted = false
  UNWIND y.reasons AS reason
  WITH reason, count(*) AS n
  ORDER BY n DESC, reason
  RETURN collect([reason, n]) AS reasons
}
WITH l, generated, assessed, accepted, distillations, reasons,
     CASE WHEN assessed = 0 THEN null ELSE toFloat(accepted) / assessed END AS survival
RETURN l.name AS lens,
       l.version AS version,
       l.family AS family,
       distillations,
       generated,
       assessed,
       accepted,
       assessed - accepted AS rejected,
       survival,
       reasons,
       l.positions AS lens_positions,
       l.event_ids AS lens_event_ids
ORDER BY coalesce(survival, -1.0) DESC, generated DESC, lens, version
