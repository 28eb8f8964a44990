"""Small logs of capabilities 3 and 4 for the dashboard's tests: one shift measurement (tokens
kept for one chunk) and a run that tracked training documents; a distillation whose cloud has
embeddings stored as the worker stores them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from events.models import RunRecorded
from events.models.distillation import (
    Checks,
    CloudAssessed,
    DistillateAssessed,
    DistillationRequested,
    assessment_key,
    cloud_key,
    distillate_id,
    distillate_key,
    distillation_id,
)
from events.models.shift import (
    DataSet,
    DatasetFigures,
    DatasetShiftMeasured,
    ExampleFigures,
    ModelState,
    ShiftMeasured,
    ShiftRequested,
    ShiftSettings,
    TrackedDocument,
    TrainingInfluenceRecorded,
)
from events.store.blobs import put_blob
from events.store.port import EventStore
from services.distillation.embeddings import EMBEDDER
from tests.graph.distillation_log import LENSES, PAIR_SET, PAIRS, _generated, keyed, ref
from tests.graph.logs import append, used

DATA = "d" * 64
EXAMPLES = 7
SHIFTS = [0.5, 0.7, 1.0, 1.2, 2.0, 4.0, 9.0]


def _tokens(i: int) -> list[dict[str, object]]:
    return [{"position": p, "token": 100 + p, "text": w, "token_loss": 0.5 * p if p else None,
             "saliency": float(p + i), "grad_x_input": 0.1 * p}
            for p, w in enumerate(["The", " cat", " sat"])]


def shift_log(store: EventStore) -> str:
    """One measurement of a 7-example data set (tokens kept for chunk 0 only), one run tracking
    three training documents; the measurement id."""
    model = ModelState(kind="directory", ref="gpt2", path="/m/gpt2", sha256="b" * 64)
    data = DataSet(sha256=DATA, name="facts.jsonl", path="/data/facts.jsonl", examples=EXAMPLES)
    mid = "m-pages"
    append(store, ShiftRequested(measurement_id=mid, model=model, dataset=data,
                                 settings=ShiftSettings(lr=0.01, chunk=4, tokens=True), chunks=2))
    chunks = []
    for chunk, ids in enumerate([range(0, 4), range(4, EXAMPLES)]):
        blob = put_blob(json.dumps({f"x{i}": _tokens(i) for i in ids}).encode()) if chunk == 0 else None
        rows = [ExampleFigures(id=f"x{i}", index=i, tokens=3, targets=2, loss_before=2.0 + 0.1 * i,
                               grad_norm=SHIFTS[i], loss_after=2.0, loss_drop=0.1 * i - 0.2) for i in ids]
        chunks += append(store, ShiftMeasured(measurement_id=mid, dataset_sha256=DATA, chunk=chunk,
                                              examples=rows, tokens_sha256=blob))
    mean = sum(SHIFTS) / EXAMPLES
    sd = (sum((s - mean) ** 2 for s in SHIFTS) / EXAMPLES) ** 0.5
    append(store, DatasetShiftMeasured(
        measurement_id=mid, dataset_sha256=DATA, model_sha256=model.sha256,
        figures=DatasetFigures(examples=EXAMPLES, total_shift=sum(SHIFTS), net_shift=10.0, coherence=0.5,
                               volatility=sd / mean, grad_norm_mean=mean, grad_norm_p50=1.2,
                               grad_norm_p90=4.0, grad_norm_max=9.0, noise_scale=0.3, truncated=0),
        used_events=used(store, chunks)))
    append(store, RunRecorded(experiment="tracked", run_id="r1", params={"lr": 0.1}, seed=0))
    append(store, TrainingInfluenceRecorded(
        experiment="tracked", run_id="r1", every=10, steps=[10, 20],
        volatility_curve=[{"step": 10, "v": 0.1}],
        influence_sha256="c" * 64,
        documents=[TrackedDocument(index=i, text=f"doc {i}", recordings=2, confidence=c, variability=v,
                                   correctness=k, forgetting_events=f, never_learned=n, final_loss=1.0,
                                   final_grad_norm=1.0)
                   for i, (c, v, k, f, n) in enumerate([(0.9, 0.05, 1.0, 0, False), (0.5, 0.3, 0.5, 1, False),
                                                        (0.1, 0.02, 0.0, 0, True)])]))
    return mid


@dataclass
class Cloud:
    distillation: str
    ids: dict[tuple[str, int], str]  # (lens, sample) -> distillate id
    stored: int  # distillates with a stored embedding


def cloud_log(store: EventStore, home: Path) -> Cloud:
    """A distillation of pair q1 through the three lenses, two samples each, with embeddings stored
    as the worker stores them, except restate #1's; causal #1 a duplicate of causal #0, child #1
    too short. The source pair's embedding is in the worker's cache index."""
    refs = [ref(lens) for lens in LENSES]
    did = distillation_id(PAIR_SET.sha256, refs, 2, "llm", "cloud-model", Checks())
    request = DistillationRequested(distillation_id=did, pair_set=PAIR_SET, pairs=PAIRS, lenses=refs,
                                    samples=2, engine="llm", model="cloud-model")
    store.append([keyed(request, f"distill-requested:{did}")])
    pair = PAIRS[0]
    generated = [_generated(did, pair, lens, s, "llm", "cloud-model") for lens in LENSES for s in range(2)]
    store.append([keyed(g, distillate_key(did, pair.id, g.lens, g.sample)) for g in generated])
    rng = np.random.default_rng(0)
    assessed, ids, stored = [], {}, 0
    for g in generated:
        ids[(g.lens, g.sample)] = g.distillate_id
        vector = rng.normal(size=8).astype(np.float32)
        vector /= np.linalg.norm(vector)
        if (g.lens, g.sample) == ("restate", 1):
            sha = hashlib.sha256(b"never stored").hexdigest()
        else:
            sha = put_blob(vector.tobytes())
            stored += 1
        reasons = {("causal", 1): ["duplicate"], ("child", 1): ["too_short"]}.get((g.lens, g.sample), [])
        dup = distillate_id(did, pair.id, "causal", 0) if reasons == ["duplicate"] else None
        assessed.append(DistillateAssessed(
            distillation_id=did, distillate_id=g.distillate_id, pair_id=pair.id, accepted=not reasons,
            reasons=reasons, similarity=0.8, chars=len(g.text), duplicate_of=dup,
            duplicate_cosine=0.97 if dup else None, embedding_sha256=sha))
    store.append([keyed(a, assessment_key(a.distillate_id)) for a in assessed])
    store.append([keyed(CloudAssessed(distillation_id=did, pair_id=pair.id, generated=6, accepted=4,
                                      diversity=0.4, vendi=3.1), cloud_key(did, pair.id))])
    source = rng.normal(size=8).astype(np.float32)
    digest = hashlib.sha256(f"{EMBEDDER}\n{pair.question} {pair.answer}".encode()).hexdigest()
    index = home / "cache" / "embeddings" / digest[:2] / digest
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(put_blob((source / np.linalg.norm(source)).tobytes()))
    return Cloud(did, ids, stored)
