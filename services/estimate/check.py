"""Every finished run is a check of the estimator: its training time predicted from the other
runs on the same device (leave-one-out), beside the time it measured, recorded as an event."""

from __future__ import annotations

import statistics
from typing import Any

from events.models.estimate import EstimateChecked, estimate_key
from events.store import EventStore, NewEvent
from services.core.errors import BadInput
from services.estimate.calibration import measured_runs
from services.estimate.estimate import ESTIMATOR_VERSION


def check(store: EventStore) -> dict[str, Any]:
    """Predict each run from the others on its device; append an EstimateChecked per new check."""
    runs = measured_runs(store)
    if not runs:
        raise BadInput("no finished runs in the log to check the estimator against: train some "
                       "(`knobs experiment run SPEC`), then run `knobs estimate --check` again")
    checks: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    new: list[NewEvent] = []
    errors: list[float] = []
    for run in sorted(runs, key=lambda r: r.run):
        others = [o.flops_per_s for o in runs if o.device == run.device and o.run != run.run]
        if not others:
            skipped.append({"run": run.run, "reason": f"the only run on {run.device}: nothing to "
                                                      "calibrate it from without itself"})
            continue
        rate = statistics.median(others)
        predicted = run.flops / rate
        error = (predicted - run.train_s) / run.train_s
        event = EstimateChecked(run=run.run, estimator_version=ESTIMATOR_VERSION, device=run.device,
                                mode=run.mode, flops=run.flops, calibration_flops_per_s=rate,
                                calibration_runs=len(others), predicted_s=predicted,
                                measured_s=run.train_s, relative_error=error)
        new.append(NewEvent(event=event, idempotency_key=estimate_key(run.run, ESTIMATOR_VERSION)))
        errors.append(abs(error))
        checks.append({"run": run.run, "predicted_s": predicted, "measured_s": run.train_s,
                       "relative_error": error})
    if not checks:
        raise BadInput("every finished run is alone on its device, so none can be predicted from the "
                       f"others: {'; '.join(s['run'] + ' (' + s['reason'] + ')' for s in skipped)}")
    appended = store.append(new)
    return {"checks": checks, "summary": {
        "median_abs_relative_error": statistics.median(errors), "runs": len(checks),
        "skipped": skipped, "new_events": sum(not a.duplicate for a in appended)}}


def check_after_runs(store: EventStore) -> str:
    """What `knobs experiment run` prints once its runs end: every finished run is now a check of
    the estimator (recorded once each), or why none could be made yet."""
    try:
        s = check(store)["summary"]
    except BadInput as exc:
        return f"estimator not checked: {exc}"
    return (f"estimator checked against {s['runs']} finished runs ({s['new_events']} new checks): median "
            f"|relative error| {s['median_abs_relative_error']:.1%} (`knobs estimate --check` for each)")
