"""A distillation as figures: a pair's cloud projected to 2D (PCA of the embeddings the checks
used), one colour per lens, rejected and duplicate distillates marked with their reasons.

The figure functions are pure: vectors in, figures out, so the projection of known vectors can
be checked by hand. `read_projection` alone reads: the report from the log and the vectors
from their blobs (services/distillation/embeddings.py), for the page and its JSON alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from events.store import EventStore
from services.core.errors import NotFound
from services.distillation.embeddings import read_vectors, source_vector
from services.distillation.report import CloudRow, DistillateRow, DistillationReport, read_report
from services.figures.model import Point, Provenance, Scatter

SOURCE = "source pair"


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """The rows projected on their first two principal components, and the share of the variance
    each explains. Deterministic: each component's sign makes its largest-magnitude loading
    positive (ties: the first), so the same vectors always give the same picture. Fewer than two
    dimensions of spread leave the missing coordinates at 0."""
    rows = np.asarray(vectors, dtype=np.float64)
    n = rows.shape[0]
    out = np.zeros((n, 2))
    if n < 2:
        return out, [0.0, 0.0]
    centred = rows - rows.mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    total = float((singular ** 2).sum())
    explained = []
    for k in range(2):
        if k >= len(singular) or singular[k] <= 1e-12 * max(1.0, singular[0]):
            explained.append(0.0)
            continue
        axis = components[k]
        if axis[int(np.argmax(np.abs(axis)))] < 0:
            axis = -axis
        out[:, k] = centred @ axis
        explained.append(float(singular[k] ** 2 / total) if total > 0 else 0.0)
    return out, explained


@dataclass(frozen=True)
class ProjectedDistillate:
    distillate_id: str
    lens: str
    sample: int
    x: float
    y: float
    accepted: bool | None
    reasons: list[str]
    duplicate_of: str | None
    similarity: float | None


@dataclass
class CloudProjection:
    """What the cloud figure is drawn from (and what its JSON says)."""

    distillation_id: str
    pair_id: str
    question: str
    answer: str
    explained: list[float]
    points: list[ProjectedDistillate] = field(default_factory=list)
    source: tuple[float, float] | None = None  # the source pair, when its embedding is cached
    missing: list[str] = field(default_factory=list)  # distillates with no stored embedding

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        return out


def project_cloud(distillation_id: str, cloud: CloudRow, vectors: dict[str, np.ndarray],
                  source: np.ndarray | None = None) -> CloudProjection:
    """The cloud's distillates that have a vector (and the source pair, if given), in one PCA."""
    drawn: list[DistillateRow] = [d for d in cloud.distillates if d.distillate_id in vectors]
    missing = [d.distillate_id for d in cloud.distillates if d.distillate_id not in vectors]
    matrix = [vectors[d.distillate_id] for d in drawn] + ([source] if source is not None else [])
    coords, explained = pca_2d(np.stack(matrix)) if matrix else (np.zeros((0, 2)), [0.0, 0.0])
    points = [ProjectedDistillate(d.distillate_id, d.lens, d.sample, round(float(coords[i, 0]), 6),
                                  round(float(coords[i, 1]), 6), d.accepted, list(d.reasons), d.duplicate_of,
                                  d.similarity)
              for i, d in enumerate(drawn)]
    where = (round(float(coords[-1, 0]), 6), round(float(coords[-1, 1]), 6)) if source is not None else None
    return CloudProjection(distillation_id, cloud.pair_id, cloud.question, cloud.answer, explained, points,
                           where, missing)


def projection_json_url(distillation_id: str, pair_id: str) -> str:
    return f"/v1/distillations/{distillation_id}/pairs/{pair_id}/projection"


def _mark(p: ProjectedDistillate) -> tuple[str, str]:
    """(mark, note): how a point is drawn and what its hover says."""
    if p.accepted is None:
        return "unassessed", "not assessed yet"
    if p.accepted:
        if p.similarity is None:
            return "", "accepted"
        return "", f"accepted, cosine to the source {p.similarity:.3g}"
    note = "rejected: " + ", ".join(p.reasons)
    if p.duplicate_of:
        note += f" (duplicate of {p.duplicate_of})"
    return ("duplicate" if "duplicate" in p.reasons else "rejected"), note


def cloud_scatter(projection: CloudProjection, lenses: list[str] | None = None) -> Scatter:
    """One point per distillate with a stored embedding, coloured by lens; a rejected one hollow
    (class `rejected`, or `duplicate`) with its reasons; the source pair as a black point."""
    order = lenses or sorted({p.lens for p in projection.points})
    groups = [g for g in order if any(p.lens == g for p in projection.points)]
    points = []
    for p in projection.points:
        mark, note = _mark(p)
        points.append(Point(x=p.x, y=p.y, label=f"{p.lens} #{p.sample}", group=p.lens, note=note, mark=mark))
    if projection.source is not None:
        points.append(Point(x=projection.source[0], y=projection.source[1], label=SOURCE, group=SOURCE,
                            note=f"{projection.question} {projection.answer}", mark="source"))
    total = len(projection.points) + len(projection.missing)
    note = (f"{len(projection.missing)} of {total} distillates have no stored embedding (their blob is not "
            "in this KNOBS_HOME): not drawn." if projection.missing else "")
    if projection.source is None and projection.points:
        note += " The source pair's embedding is not cached here: it is not drawn."
    pc = [f"PC{k + 1} ({share:.0%} of the variance)" for k, share in enumerate(projection.explained)]
    about = {"distillation": projection.distillation_id, "pair": projection.pair_id,
             "drawn": f"{len(projection.points)} of {total} distillates"}
    return Scatter(provenance=Provenance(title=f"The cloud of pair {projection.pair_id}", about=about,
                                         json_url=projection_json_url(projection.distillation_id,
                                                                      projection.pair_id)),
                   x_label=pc[0], y_label=pc[1], points=points, groups=groups, note=note.strip())


def find_cloud(report: DistillationReport, pair: str) -> CloudRow:
    cloud = next((c for c in report.clouds if c.pair_id == pair), None)
    if cloud is None:
        raise NotFound(f"distillation {report.distillation_id} has no pair {pair!r}: "
                       f"/ui/distillation/{report.distillation_id} lists its pairs")
    return cloud


def read_projection(store: EventStore, home: Path, distillation: str, pair: str) -> CloudProjection:
    """The projection of one pair's cloud, from the log and the stored embeddings."""
    cloud = find_cloud(read_report(store, distillation), pair)
    vectors, _ = read_vectors({d.distillate_id: d.embedding_sha256 for d in cloud.distillates})
    source = source_vector(home, cloud.question, cloud.answer) if vectors else None
    if source is not None and any(v.shape != source.shape for v in vectors.values()):
        source = None
    return project_cloud(distillation, cloud, vectors, source)
