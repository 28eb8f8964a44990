"""What a training run leaves on disk, and how to load it back: the artifact layout.

    <out_dir>/config.json    the resolved TrainConfig (the HF model config lives in model/)
    <out_dir>/model/         the weights (a LoRA run: its adapters only)
    <out_dir>/tokenizer/     the tokenizer trained on the run's documents

It sits apart from the trainer so that jobs which read checkpoints (shift) and jobs the
trainer runs (influence recording, which uses shift) do not import each other in a circle.
`workers.jobs.train` re-exports every name here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peft import PeftModel
from transformers import GPT2LMHeadModel, LlamaForCausalLM, PreTrainedModel

from workers.data.tokenizer import Tokenizer, load_tokenizer

CONFIG_FILE = "config.json"  # the resolved TrainConfig (the HF model config lives in model/)
MODEL_DIR = "model"
TOKENIZER_DIR = "tokenizer"
# transformers 5 warns on every model whose loss_type is unset; causal-LM loss is what we mean.
LOSS_TYPE = "ForCausalLM"


class TrainingError(Exception):
    """A training run could not produce a result."""


class InvalidTrainingConfig(TrainingError, ValueError):
    """The request cannot be trained as given; the message says what to change."""


def read_config(checkpoint: Path) -> dict[str, Any]:
    """The resolved TrainConfig saved in a checkpoint directory."""
    path = Path(checkpoint) / CONFIG_FILE
    if not path.is_file():
        raise InvalidTrainingConfig(
            f"base checkpoint {checkpoint} is missing {CONFIG_FILE}: "
            "is it the artifact directory of a finished run?"
        )
    config: dict[str, Any] = json.loads(path.read_text())
    return config


def load_checkpoint(checkpoint: Path) -> tuple[PreTrainedModel, Tokenizer, dict[str, Any]]:
    """The model, tokenizer and resolved config a run saved. A LoRA run's adapters are merged
    into its base, so the result is a plain model (usable as the base of another run)."""
    checkpoint = Path(checkpoint)
    config = read_config(checkpoint)
    if not (checkpoint / MODEL_DIR).is_dir():
        raise InvalidTrainingConfig(f"checkpoint {checkpoint} has no {MODEL_DIR}/ directory")
    tokenizer = load_tokenizer(checkpoint / TOKENIZER_DIR)
    model: PreTrainedModel
    if config.get("base_model"):
        from workers.jobs.pretrained import load_pretrained  # a sibling job module, loaded when asked

        pretrained, _, _ = load_pretrained(config["base_model"])
        model = PeftModel.from_pretrained(pretrained, checkpoint / MODEL_DIR).merge_and_unload()
    elif config.get("lora_rank") is not None:
        base, _, _ = load_checkpoint(Path(config["base_checkpoint"]))
        model = PeftModel.from_pretrained(base, checkpoint / MODEL_DIR).merge_and_unload()
    else:
        family = GPT2LMHeadModel if config["model_family"] == "gpt2" else LlamaForCausalLM
        model = family.from_pretrained(checkpoint / MODEL_DIR)
    model.loss_type = LOSS_TYPE
    return model, tokenizer, config
