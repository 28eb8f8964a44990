"""What a run cost, as a flat dict[str, float] for events' `costs`.

A model is two things of very different size: its weights are data (parameters x bytes per
parameter, at each precision) and its architecture is a small program (the config JSON plus
the source of the transformers modeling module). Both are recorded, beside compute (FLOPs
estimated as 6·N·D and measured by torch's FlopCounterMode), tokens, wall time and memory.
"""

from __future__ import annotations

import inspect
import resource
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

BYTES_PER_PARAM: dict[str, float] = {"fp32": 4, "bf16": 2, "int8": 1, "int4": 0.5}


def unique_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Each parameter once, even when tied (GPT-2's output layer is its token embedding)."""
    seen: set[int] = set()
    params = []
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            params.append(p)
    return params


def parameter_counts(model: nn.Module) -> dict[str, float]:
    """Total, non-embedding (Kaplan's N: no token/position embedding, no untied unembedding)
    and trainable parameter counts."""
    params = unique_parameters(model)
    embedding_ids = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    get_output = getattr(model, "get_output_embeddings", None)
    output = get_output() if callable(get_output) else None
    if isinstance(output, nn.Module):
        embedding_ids |= {id(p) for p in output.parameters()}
    return {
        "params_total": float(sum(p.numel() for p in params)),
        "params_non_embedding": float(sum(p.numel() for p in params if id(p) not in embedding_ids)),
        "params_trainable": float(sum(p.numel() for p in params if p.requires_grad)),
    }


def code_bytes(model: nn.Module) -> float:
    """Bytes of the model's description: its config JSON plus its modeling module's source."""
    get_base = getattr(model, "get_base_model", None)  # a peft wrapper describes its base
    base = get_base() if callable(get_base) else model
    config = getattr(base, "config", None)
    size = len(config.to_json_string().encode()) if config is not None else 0
    try:
        source = inspect.getsourcefile(type(base))
    except TypeError:
        source = None
    if source is not None and Path(source).is_file():
        size += Path(source).stat().st_size
    return float(size)


def measure_flops(step: Callable[[], object]) -> float | None:
    """FLOPs of one call of `step` (e.g. a forward and backward pass), or None where torch's
    flop counter cannot follow it (an op it does not know must not fail the run)."""
    try:
        with FlopCounterMode(display=False) as counter:
            step()
        return float(counter.get_total_flops())
    except Exception as exc:  # the counter is a best-effort measurement, never a reason to fail
        print(f"flop counting failed, flops_measured omitted: {exc!r}", file=sys.stderr)
        return None


def peak_memory_bytes(device: torch.device) -> float:
    """Peak memory of the run: allocated GPU memory on CUDA, the process's peak RSS on CPU
    (which includes Python and torch themselves, a few hundred MB)."""
    if device.type == "cuda":
        return float(torch.cuda.max_memory_allocated(device))
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)


def run_costs(
    model: nn.Module,
    *,
    tokens: int,
    steps: int,
    wall_s: float,
    train_s: float,
    device: torch.device,
    flops_per_step: float | None,
) -> dict[str, float]:
    """The flat cost record of a finished run.

    flops_6nd uses N = params_total (the tied output projection is a real matmul; for tiny
    models it dominates); flops_measured is one training step's forward+backward FLOPs as
    counted by FlopCounterMode, times the number of steps (optimizer FLOPs not counted).
    """
    costs = parameter_counts(model)
    for precision, size in BYTES_PER_PARAM.items():
        costs[f"bytes_{precision}"] = size * costs["params_total"]
    costs["code_bytes"] = code_bytes(model)
    costs["tokens"] = float(tokens)
    costs["steps"] = float(steps)
    costs["flops_6nd"] = 6.0 * costs["params_total"] * tokens
    if flops_per_step is not None:
        costs["flops_measured"] = flops_per_step * steps
    costs["wall_s"] = float(wall_s)  # the whole run: data, tokenizer, training, evaluation
    costs["train_s"] = float(train_s)  # the training loop alone
    costs["tokens_per_s"] = tokens / train_s if train_s > 0 else 0.0
    costs["peak_mem_bytes"] = peak_memory_bytes(device)
    return costs
