# ruff: noqa: RUF001, RUF002  (the notation of the definitions)
"""Influence and volatility as figures: a measurement's per-example shifts as a histogram, its
examples mapped by loss and shift, and the training-time cartography of tracked documents.

The per-example shift is grad_norm = ‖∇ℓ_i‖ at the measured weights (one SGD step on the
example moves them by lr × grad_norm); a data set's volatility is pstdev/mean of it (README,
"Influence and volatility"). Pure: measurements and query rows in, model.py figures out."""

from __future__ import annotations

from typing import Any

from services.figures.model import Histogram, Point, Provenance, Scatter, histogram
from services.shift.figures import Measurement

SHIFT = "per-example shift ‖∇ℓ‖ (grad_norm)"


def measurement_json_url(measurement_id: str) -> str:
    return f"/v1/measurements/{measurement_id}"


def volatile_json_url(dataset: str, measurement_id: str, limit: int) -> str:
    return f"/v1/datasets/{dataset}/volatile-examples?measurement={measurement_id}&limit={limit}"


def _about(m: Measurement) -> dict[str, str]:
    r = m.request
    return {"data set": f"{r.dataset.name} ({r.dataset.sha256[:12]})", "model": r.model.ref,
            "measurement": r.measurement_id}


def volatility_histogram(m: Measurement, bins: int = 20) -> Histogram:
    """How the examples' shifts spread: one count per example, bars summing to the examples."""
    values = [float(x["grad_norm"]) for x in m.examples]
    edges, counts = histogram(values, bins=min(bins, max(1, len(values))))
    note = ""
    if m.summary is not None:
        f = m.summary.figures
        note = (f"volatility {f.volatility:.4g} (pstdev / mean of the shifts), coherence {f.coherence:.3g}, "
                f"{f.examples} examples")
    url = measurement_json_url(m.request.measurement_id)
    return Histogram(provenance=Provenance(title=f"Per-example shifts of {m.request.dataset.name}",
                                           about=_about(m), json_url=url),
                     x_label=SHIFT, edges=edges, counts=counts, note=note)


def _change(x: dict[str, Any]) -> str:
    drop = x.get("loss_drop")
    if drop is None:
        return "loss after not measured"
    return "loss fell after one step" if drop > 0 else "loss rose or held after one step"


def shift_map(m: Measurement) -> Scatter:
    """The measurement's own cartography: each example's loss before the step against its shift,
    coloured by whether one SGD step on it lowered its loss (loss_drop > 0). Not the training-time
    map of Swayamdipta et al. (that needs recordings over training: TrainingInfluenceRecorded)."""
    points = [Point(x=float(x["loss_before"]), y=float(x["grad_norm"]), label=str(x["id"]), group=_change(x),
                    note=(f"loss after {x['loss_after']:.4g}" if x.get("loss_after") is not None else ""))
              for x in m.examples]
    groups = [g for g in ("loss fell after one step", "loss rose or held after one step",
                          "loss after not measured") if any(p.group == g for p in points)]
    url = measurement_json_url(m.request.measurement_id)
    return Scatter(provenance=Provenance(title=f"Loss against shift, {m.request.dataset.name}",
                                         about=_about(m), json_url=url),
                   x_label="loss before the step (mean per target token)", y_label=SHIFT,
                   points=points, groups=groups,
                   note="One point per example, from this measurement (one step at the measured weights), "
                        "not from training.")


def _region(row: dict[str, Any]) -> str:
    if row.get("never_learned"):
        return "never learned"
    if (row.get("forgetting_events") or 0) > 0:
        return "forgotten at least once"
    return "learned, never forgotten"


def training_cartography(experiment: str, rows: list[dict[str, Any]], limit: int) -> Scatter:
    """Dataset cartography (Swayamdipta et al. 2020) of the documents a run tracked while training:
    variability (std of the gold tokens' probability over the recordings) against confidence
    (its mean), one point per (run, document), coloured by forgetting (Toneva et al. 2019)."""
    points = [Point(x=float(r["variability"]), y=float(r["confidence"]), label=f"{r['run_id']} #{r['index']}",
                    group=_region(r), note=f"correctness {r['correctness']:.2g}, "
                                           f"{r['forgetting_events']} forgetting events: {r['text'][:60]}")
              for r in rows]
    groups = [g for g in ("learned, never forgotten", "forgotten at least once", "never learned")
              if any(p.group == g for p in points)]
    runs = sorted({str(r["run_id"]) for r in rows})
    return Scatter(provenance=Provenance(
        title=f"Cartography of the documents {experiment}'s runs tracked in training",
        about={"experiment": experiment, "runs": str(len(runs)), "documents": str(len(rows))},
        json_url=f"/v1/examples/forgotten?experiment={experiment}&limit={limit}"),
        x_label="variability (std of gold-token probability over recordings)",
        y_label="confidence (mean gold-token probability)", points=points, groups=groups)
