"""A tiny training configuration: a handful of steps of a one-layer model, a second or two on a CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import workers.jobs  # noqa: F401  # sets the OpenMP wait policy before torch loads
from workers.jobs.train import StepInfo, TrainResult, run_training

TINY: dict[str, Any] = {
    "n_layer": 1,
    "n_head": 2,
    "d_model": 32,
    "context_length": 32,
    "batch_size": 8,
    "train_tokens": 8 * 32 * 40,  # 40 steps
    "n_people": 12,
    "vocab_size": 300,
    "lr": 1e-2,
}
ALL = ["qa_exact_match", "qa_exact_match_seen", "heldout_loss"]


@pytest.fixture(scope="session")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, list[StepInfo]]:
    """One tiny GPT-2 run, shared: its result and what its step hook saw."""
    seen: list[StepInfo] = []
    out = tmp_path_factory.mktemp("base")
    result = run_training(TINY, seed=0, benchmarks=ALL, out_dir=out, hooks=[seen.append])
    return result, seen


@pytest.fixture
def base_dir(base_run: tuple[TrainResult, list[StepInfo]]) -> Path:
    return Path(base_run[0].artifact)
