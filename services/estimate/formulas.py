"""The arithmetic of training cost: FLOPs per token and memory, for full and LoRA training.

Full training of a dense transformer costs ≈ 6·N·D FLOPs (Kaplan et al. 2020, "Scaling Laws
for Neural Language Models", §2.1: forward 2·N·D, backward 4·N·D). LoRA on a frozen base costs
≈ 4·N·D: the forward pass is still 2·N·D, the backward pass must still carry activation
gradients through every frozen layer (2·N·D) but skips the frozen weights' gradients (the
other 2·N·D); the adapters' own weight gradients are 6·r·(d_in+d_out) per adapted matrix per
token, negligible at small rank (Hu et al. 2021, "LoRA", §4.2 reports the same saving as
throughput; the 2ND/2ND split is the standard backward accounting of Kaplan et al.).

Memory, mixed-precision AdamW (Rajbhandari et al. 2020, "ZeRO", §3.1: 16 bytes per trained
parameter = bf16 weights 2 + bf16 grads 2 + fp32 master weights 4 + fp32 Adam moments 8), and
activations per layer ≈ 34·s·b·h bytes (Korthikanti et al. 2022, "Reducing Activation
Recomputation in Large Transformer Models", §4.1 gives s·b·h·(34 + 5·a·s/h); the 5·a·s/h term is
the stored attention-score matrix, which fused attention — torch's SDPA, FlashAttention — never
keeps, as their selective recomputation of §4.2 does not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["full", "lora"]

BYTES_TRAINED_PARAM = 16.0  # ZeRO §3.1, mixed-precision AdamW
BYTES_FROZEN_PARAM = 2.0  # bf16 weights only


@dataclass(frozen=True)
class Model:
    """The size and shape the estimate needs of a student."""

    name: str
    mode: Mode
    params: float
    n_layer: int
    d_model: int
    n_head: int
    trainable: float  # = params for full training; the adapters' parameters for LoRA


def lora_params(n_layer: int, rank: int, shapes: tuple[tuple[int, int], ...]) -> float:
    """Adapters of rank r on each layer's matrices of (d_in, d_out): r·(d_in + d_out) per matrix."""
    return float(n_layer * rank * sum(d_in + d_out for d_in, d_out in shapes))


# SmolLM2-135M (HuggingFaceTB/SmolLM2-135M config.json: 30 layers, hidden 576, 9 heads,
# vocabulary 49152 tied; 134,515,008 parameters). "scratch-135m" is the same shape trained
# from scratch, to compare full training and LoRA at one size.
BASES: dict[str, Model] = {
    # The trainer adapts q_proj (576 -> 576) and v_proj (576 -> 192: 3 key-value heads of 64),
    # workers/jobs/train.py LORA_TARGETS["llama"], at the default rank 8: 460,800 adapters.
    "smollm2-135m": Model("smollm2-135m", "lora", 134_515_008.0, 30, 576, 9,
                          lora_params(30, 8, ((576, 576), (576, 192)))),
    "scratch-135m": Model("scratch-135m", "full", 134_515_008.0, 30, 576, 9, 134_515_008.0),
}


def flops_per_token(mode: Mode, params: float) -> float:
    return (6.0 if mode == "full" else 4.0) * params


def training_flops(mode: Mode, params: float, tokens: float) -> float:
    return flops_per_token(mode, params) * tokens


def activation_bytes(model: Model, context: int, batch: int) -> float:
    return 34.0 * model.n_layer * context * batch * model.d_model


def memory_bytes(model: Model, context: int, batch: int) -> dict[str, float]:
    """What training holds in memory, by part (bytes)."""
    if model.mode == "full":
        states = {"weights_grads_adamw": BYTES_TRAINED_PARAM * model.params}
    else:
        states = {"frozen_base": BYTES_FROZEN_PARAM * model.params,
                  "adapters_grads_adamw": BYTES_TRAINED_PARAM * model.trainable}
    states["activations"] = activation_bytes(model, context, batch)
    states["total"] = sum(states.values())
    return states
