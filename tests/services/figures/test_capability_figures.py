"""The figures of capabilities 3 and 4, from objects whose answer is known: PCA of known
vectors, a histogram of a measurement's shifts, the repetition curves in K."""

from __future__ import annotations

import math

import numpy as np
import pytest

from events.models.shift import DataSet, ModelState, ShiftRequested, ShiftSettings
from services.distillation.report import CloudRow, DistillateRow
from services.figures.distillation import cloud_scatter, pca_2d, project_cloud
from services.figures.repetition import k_curves, k_grid
from services.figures.shift import shift_map, training_cartography, volatility_histogram
from services.repetition.report import Report, table
from services.shift.figures import Measurement


def test_pca_of_points_on_a_line_and_a_plane() -> None:
    # Points along one direction: PC1 is their coordinate along it (centred), PC2 is 0
    line = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [3.0, 6.0, 0.0]])
    coords, explained = pca_2d(line)
    step = math.sqrt(5)
    assert coords[:, 0] == pytest.approx([-1.5 * step, -0.5 * step, 0.5 * step, 1.5 * step])
    assert coords[:, 1] == pytest.approx([0, 0, 0, 0])
    assert explained == pytest.approx([1.0, 0.0])
    # The sign is fixed: the largest loading is positive whatever the input's orientation
    flipped, _ = pca_2d(-line)
    assert flipped[:, 0] == pytest.approx(-coords[:, 0])
    # A plane with more spread along x than z: PC1 = x, PC2 = z, distances kept
    plane = np.array([[-2.0, 0, -1], [2.0, 0, -1], [-2.0, 0, 1], [2.0, 0, 1]])
    coords, explained = pca_2d(plane)
    assert coords == pytest.approx(plane[:, [0, 2]])
    assert explained == pytest.approx([0.8, 0.2])
    # Deterministic: the same vectors, the same picture
    assert np.array_equal(pca_2d(plane)[0], coords)
    # Too few points to spread: zeros, not an error
    assert pca_2d(np.ones((1, 3)))[0].tolist() == [[0.0, 0.0]]


def _row(did: str, lens: str, accepted: bool, reasons: list[str], dup: str | None = None) -> DistillateRow:
    return DistillateRow(did, lens, "v1", 0, f"text {did}", False, 5, accepted, reasons, 0.8, dup, "")


def test_the_cloud_scatter_colours_by_lens_marks_rejections_and_counts_the_missing() -> None:
    cloud = CloudRow("q1", "Where?", "Lisbon", [
        _row("a", "restate", True, []), _row("b", "child", False, ["too_short"]),
        _row("c", "child", False, ["duplicate"], dup="a"), _row("d", "causal", True, [])])
    vectors = {"a": np.array([1.0, 0, 0]), "b": np.array([0, 1.0, 0]), "c": np.array([0.9, 0.1, 0])}
    projection = project_cloud("dist", cloud, vectors, source=np.array([0.5, 0.5, 0.0]))
    assert projection.missing == ["d"] and len(projection.points) == 3 and projection.source is not None
    fig = cloud_scatter(projection, ["restate", "child", "causal"])
    assert fig.groups == ["restate", "child"]  # causal has nothing drawn
    by_label = {p.label: p for p in fig.points}
    assert by_label["child #0"].mark in ("rejected", "duplicate")
    marks = sorted(p.mark for p in fig.points)
    assert marks == ["", "duplicate", "rejected", "source"]
    notes = " ".join(p.note for p in fig.points)
    assert "too_short" in notes and "duplicate of a" in notes
    assert "1 of 4 distillates have no stored embedding" in fig.note
    assert fig.provenance.json_url == "/v1/distillations/dist/pairs/q1/projection"


def _measurement() -> Measurement:
    request = ShiftRequested(
        measurement_id="m1", model=ModelState(kind="directory", ref="gpt2", path="/m", sha256="b" * 64),
        dataset=DataSet(sha256="d" * 64, name="d.jsonl", path="/d.jsonl", examples=5),
        settings=ShiftSettings(lr=0.01, chunk=2), chunks=3)
    examples = [{"id": f"x{i}", "grad_norm": float(g), "loss_before": 2.0 + i, "loss_drop": d,
                 "loss_after": None}
                for i, (g, d) in enumerate([(1, 0.1), (1, -0.1), (2, 0.2), (5, None), (9, 0.3)])]
    return Measurement(request, examples=examples)


def test_the_volatility_histogram_counts_every_example_once() -> None:
    fig = volatility_histogram(_measurement(), bins=4)
    assert sum(fig.counts) == 5 and len(fig.edges) == len(fig.counts) + 1
    assert fig.counts == [3, 0, 1, 1]  # [1,3): 1,1,2; [3,5): -; [5,7): 5; [7,9]: 9
    assert fig.provenance.json_url == "/v1/measurements/m1"
    scatter = shift_map(_measurement())
    assert [p.group for p in scatter.points].count("loss fell after one step") == 3
    assert scatter.groups == ["loss fell after one step", "loss rose or held after one step",
                              "loss after not measured"]


def test_training_cartography_puts_variability_on_x_and_confidence_on_y() -> None:
    rows = [{"run_id": "r1", "index": 0, "text": "a", "variability": 0.1, "confidence": 0.9,
             "correctness": 1.0, "forgetting_events": 0, "never_learned": False},
            {"run_id": "r1", "index": 1, "text": "b", "variability": 0.3, "confidence": 0.2,
             "correctness": 0.0, "forgetting_events": 0, "never_learned": True}]
    fig = training_cartography("exp", rows, 100)
    assert [(p.x, p.y, p.group) for p in fig.points] == [(0.1, 0.9, "learned, never forgotten"),
                                                         (0.3, 0.2, "never learned")]
    assert fig.provenance.json_url == "/v1/examples/forgotten?experiment=exp&limit=100"


def test_repetition_curves_have_one_series_per_condition_and_a_fitted_line() -> None:
    scores = {("verbatim", 1): {0: 0.20, 1: 0.22}, ("verbatim", 4): {0: 0.20, 1: 0.22},
              ("lenses", 1): {0: 0.21, 1: 0.23}, ("lenses", 4): {0: 0.41, 1: 0.43}}
    t = table("pretrain_finetune", "qa_choice_accuracy", scores)
    report = Report("rep", 8, "equal tokens", ["lenses", "verbatim"], [1, 4], ["pretrain_finetune"], [0, 1],
                    None, tables=[t])
    fig = k_curves(report, t)
    plain = [s for s in fig.series if not s.fitted]
    assert [s.name for s in plain] == ["lenses", "verbatim"] and fig.log_x
    assert [p.x for p in plain[0].points] == [1.0, 4.0] and plain[0].points[1].y == pytest.approx(0.42)
    assert all(p.low is not None and p.high is not None for s in plain for p in s.points)
    fit = next(s for s in fig.series if s.name == "fit: lenses")
    # y = a + b ln K through the means: 0.22 at K=1, 0.42 at K=4
    assert [p.y for p in fit.points] == pytest.approx([0.22, 0.42])
    assert fig.provenance.json_url == "/v1/repetition/rep"
    conditions, rows = k_grid(t)
    assert conditions == ["verbatim", "lenses"] and [k for k, _ in rows] == [1, 4]
