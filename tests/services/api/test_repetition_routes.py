"""`GET /v1/repetition/{experiment}` reads the report from the log, as the CLI's --json prints it."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from events.models import BenchmarkScored, RunRequested
from events.store import NewEvent
from services.access.tokens import create_token
from services.api.app import create_app
from services.core.context import Context


def test_the_report_route_answers_from_the_log_and_404s_an_unknown_experiment(
    knobs_env: dict[str, str],
) -> None:
    # Given a repetition experiment's requests and scores: lenses ahead of verbatim at K=2
    events: list[NewEvent] = []
    cells = [("verbatim", 1, 0, 0.20), ("verbatim", 1, 1, 0.22), ("lenses", 1, 0, 0.21),
             ("lenses", 1, 1, 0.23), ("verbatim", 2, 0, 0.20), ("verbatim", 2, 1, 0.22),
             ("lenses", 2, 0, 0.40), ("lenses", 2, 1, 0.42)]
    for condition, k, seed, value in cells:
        run_id = f"{condition}-{k}-s{seed}"
        events.append(NewEvent(event=RunRequested(
            experiment="rep", run_id=run_id, executor="train", seed=seed, benchmarks=["qa_choice_accuracy"],
            params={"condition": condition, "K": k, "protocol": "pretrain_finetune", "train_tokens": 5000})))
        events.append(NewEvent(event=BenchmarkScored(experiment="rep", run_id=run_id,
                                                     benchmark="qa_choice_accuracy", value=value)))
    with Context() as ctx:
        ctx.store().append(events)
    with TestClient(create_app(Context())) as client:
        client.headers["Authorization"] = f"Bearer {create_token(Path(knobs_env['KNOBS_HOME']), 'r', 'read')}"
        # When the report is asked for
        body = client.get("/v1/repetition/rep").json()
        # Then it has the table, the difference beyond noise at K=2 and the paper's rows
        (t,) = body["tables"]
        assert t["benchmark"] == "qa_choice_accuracy" and len(t["cells"]) == 4
        at2 = next(d for d in t["differences"] if d["K"] == 2)
        assert at2["label"] == "better beyond noise"
        assert body["budget"].startswith("equal tokens") and body["paper"]
        assert client.get("/v1/repetition/nope").status_code == 404
