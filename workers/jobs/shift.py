# ruff: noqa: RUF002, RUF003  (the definitions use the notation of the issue and the papers: ℓ, θ, −)
"""How much one training example moves a model: per-example shift and dataset volatility.

For a model state θ and an example i, ℓ_i is the mean token cross-entropy over the example's
target tokens (every token after the first for a `{"text": ...}` line, only the completion's
tokens for a `{"prompt": ..., "completion": ...}` line), in eval mode and fp32; g_i = ∇θ ℓ_i
over the trainable parameters (only the adapters' when the model is a LoRA). Per example:

    grad_norm      ‖g_i‖₂, total and per parameter group (embeddings, each block's attention
                   and MLP, norms, head; a LoRA's A and B per block)
    update_norm    the size of the step that example alone would take: sgd lr·‖g_i‖; adam from
                   a fresh state, whose first step is lr·g/(|g|+eps) per coordinate
    loss_before, loss_after, loss_drop   ℓ_i before and after that step
    probe_shift    the change of the mean loss on the probe set caused by that step
    hidden_shift   ‖h′ − h‖/‖h‖ of the last hidden states on the probe set after that step

and over the data set: total_shift = Σ‖g_i‖, net_shift = ‖Σ g_i‖, coherence = net/total,
volatility = pstdev(grad_norm)/mean(grad_norm) with p50/p90/max of grad_norm, and the
gradient noise scale B_simple = tr(Σ)/‖G‖² with G = mean g_i and tr(Σ) = mean ‖g_i − G‖²
(McCandlish et al. 2018, "An Empirical Model of Large-Batch Training").

Per-example gradients come from torch.func (`vmap(grad_and_value(...))` over a chunk of
right-padded examples: causal attention means padding on the right changes no real position),
exact to a per-example backward loop; tests/workers/jobs/test_shift.py holds them equal.

    python -m workers.jobs.shift --model DIR --data FILE.jsonl [--probe FILE.jsonl] [--json]

DIR is a run's artifact directory (what `knobs experiment run` trained) or any local
transformers causal-LM directory with its tokenizer, or a peft adapter directory whose base
is a local directory.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, vmap
from tqdm import tqdm

from events.models.shift import ShiftInputRejected
from workers.data.tokenizer import load_tokenizer
from workers.jobs import ghost_norms
from workers.jobs.checkpoint import CONFIG_FILE, MODEL_DIR, TOKENIZER_DIR, load_checkpoint, read_config

OPTIMIZERS = ("sgd", "adam")
METRICS = ("full", "norms")
ADAM_EPS = 1e-8
# Per-example gradients of one chunk live at once: B x trainable parameters x 4 bytes.
CHUNK_BUDGET_BYTES = 512 * 2**20
MAX_CHUNK = 32


class ShiftInputError(ShiftInputRejected):
    """The data or the model cannot be measured as given; the message says what to change."""


# --- the data ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Example:
    """One line of the data: the text before the targets (`prompt`, may be empty) and the targets."""

    id: str
    prompt: str
    target: str
    plain_text: bool  # a {"text"} line: every token after the first is a target


def read_examples(path: Path) -> list[Example]:
    """Every example of a JSONL file, or one ShiftInputError naming the first bad line."""
    if not path.is_file():
        raise ShiftInputError(f"{path}: no such file (give a .jsonl file, one example per line)")
    examples: list[Example] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ShiftInputError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise ShiftInputError(f"{path}:{number}: expected an object with \"text\" or "
                                  "\"prompt\" and \"completion\"")
        ident = str(row.get("id", number))
        if isinstance(row.get("text"), str) and row["text"].strip():
            examples.append(Example(ident, "", row["text"], plain_text=True))
        elif isinstance(row.get("prompt"), str) and isinstance(row.get("completion"), str) \
                and row["completion"].strip():
            examples.append(Example(ident, row["prompt"], row["completion"], plain_text=False))
        else:
            raise ShiftInputError(f"{path}:{number}: no text: give a non-empty \"text\", or "
                                  "\"prompt\" and a non-empty \"completion\"")
    if not examples:
        raise ShiftInputError(f"{path}: the data set is empty")
    return examples


# --- the model ----------------------------------------------------------------------------------

@dataclass
class MeasuredModel:
    """A causal LM in eval mode and fp32, how to tokenise for it, and what it is."""

    model: nn.Module
    encode: Callable[[str, bool], list[int]]  # (text, is_first_piece) -> ids
    context_length: int
    source: str  # "knobs-run" or "transformers"
    lora: bool
    decode: Callable[[int], str] | None = None  # one token id -> its text, for token-level output
    vocab_size: int | None = None  # rows of the input embedding: a larger token id is refused


def load_model(path: Path, device: str = "cpu") -> MeasuredModel:
    path = Path(path)
    if not path.is_dir():
        raise ShiftInputError(f"{path}: not a directory (give a run's artifact directory or a "
                              "transformers model directory)")
    if (path / CONFIG_FILE).is_file() and (path / MODEL_DIR).is_dir():
        measured = _load_knobs_run(path)
    elif (path / "adapter_config.json").is_file():
        measured = _load_adapter(path)
    elif (path / "config.json").is_file():
        measured = _load_transformers(path)
    else:
        attempts = sorted(p.parent for p in path.glob(f"*/{MODEL_DIR}/{CONFIG_FILE}"))
        hint = f"; did you mean {attempts[-1]}?" if attempts else ""
        raise ShiftInputError(f"{path}: neither a run's artifact directory ({CONFIG_FILE} and "
                              f"{MODEL_DIR}/) nor a transformers model (config.json){hint}")
    measured.model.to(device=device, dtype=torch.float32).eval()
    embeddings = measured.model.get_input_embeddings()  # type: ignore[operator]
    measured.vocab_size = int(embeddings.num_embeddings)
    set_attention = getattr(measured.model, "set_attn_implementation", None)
    if callable(set_attention):
        set_attention("eager")  # eager attention has vmap batching rules; SDPA on CPU loops
    return measured


def _load_knobs_run(path: Path) -> MeasuredModel:
    config = read_config(path)
    tokenizer = load_tokenizer(path / TOKENIZER_DIR)
    if config.get("lora_rank") is not None:
        from peft import PeftModel

        base, _, _ = load_checkpoint(Path(config["base_checkpoint"]))
        model: nn.Module = PeftModel.from_pretrained(base, path / MODEL_DIR, is_trainable=True)
    else:
        model, _, _ = load_checkpoint(path)
    return MeasuredModel(model, lambda text, _first: tokenizer.encode(text),
                         int(config["context_length"]), "knobs-run", config.get("lora_rank") is not None,
                         decode=lambda token: tokenizer.decode([token]))


def _load_transformers(path: Path, base_of: Path | None = None) -> MeasuredModel:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ShiftInputError(f"{path}: not a causal language model transformers can load ({exc})") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_of or path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ShiftInputError(f"{base_of or path}: no tokenizer to load ({exc})") from exc

    def encode(text: str, first: bool) -> list[int]:
        # The tokenizer's own defaults for the first piece (a BOS where it adds one), none after.
        return list(tokenizer(text, add_special_tokens=first)["input_ids"])

    context = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    return MeasuredModel(model, encode, int(context or 1024), "transformers", lora=False,
                         decode=lambda token: str(tokenizer.decode([token])))


def _load_adapter(path: Path) -> MeasuredModel:
    from peft import PeftConfig, PeftModel

    base_dir = Path(PeftConfig.from_pretrained(str(path)).base_model_name_or_path or "")
    if not base_dir.is_dir():
        raise ShiftInputError(f"{path}: a LoRA adapter whose base {str(base_dir)!r} is not a local "
                              "directory (nothing is downloaded)")
    tokenizer_dir = path if (path / "tokenizer_config.json").is_file() else base_dir
    base = _load_transformers(base_dir, base_of=tokenizer_dir)
    model = PeftModel.from_pretrained(base.model, path, is_trainable=True)
    return MeasuredModel(model, base.encode, base.context_length, "transformers", lora=True,
                         decode=base.decode)


# --- encoding -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    first_target: int  # ids[first_target:] are the targets, each predicted from what precedes it
    truncated: bool


def encode(example: Example, measured: MeasuredModel, truncate: bool = True) -> Encoded:
    if example.plain_text:
        ids, first_target = measured.encode(example.target, True), 1
    else:
        prompt = measured.encode(example.prompt, True) if example.prompt else []
        completion = measured.encode(example.target, not prompt)
        ids, first_target = prompt + completion, max(1, len(prompt))
    if len(ids) < 2 or first_target >= len(ids):
        raise ShiftInputError(f"example {example.id}: fewer than two tokens, nothing to predict")
    if measured.vocab_size is not None and ids and max(ids) >= measured.vocab_size:
        raise ShiftInputError(f"example {example.id}: token id {max(ids)} is outside the model's vocabulary "
                              f"of {measured.vocab_size}: the tokenizer is not this model's")
    truncated = len(ids) > measured.context_length
    if truncated:
        if not truncate:
            raise ShiftInputError(f"example {example.id}: {len(ids)} tokens, longer than the model's "
                                  f"context of {measured.context_length} (drop --no-truncate to cut it)")
        ids = ids[:measured.context_length]
        if first_target >= len(ids):
            raise ShiftInputError(f"example {example.id}: its prompt fills the whole context of "
                                  f"{measured.context_length} tokens, no target is left")
    return Encoded(ids, first_target, truncated)


def padded(batch: Sequence[Encoded], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) ids right-padded with 0, and (B, T) target masks: True where a token is a target."""
    length = max(len(e.ids) for e in batch)
    ids = torch.zeros(len(batch), length, dtype=torch.long)
    mask = torch.zeros(len(batch), length, dtype=torch.bool)
    for row, e in enumerate(batch):
        ids[row, :len(e.ids)] = torch.tensor(e.ids)
        mask[row, e.first_target:len(e.ids)] = True
    return ids.to(device), mask.to(device)


# --- parameter groups ---------------------------------------------------------------------------

_BLOCK = re.compile(r"\.(?:h|layers|blocks)\.(\d+)\.")


def parameter_group(name: str) -> str:
    """embeddings | block<i>.attention | block<i>.mlp | norms | head, with .lora_A/.lora_B for adapters."""
    lora = next((f".{part}" for part in ("lora_A", "lora_B") if f".{part}." in name), "")
    block = _BLOCK.search(name)
    if not lora and any("norm" in part.lower() or part.startswith("ln_") for part in name.split(".")):
        return "norms"
    if block:
        kind = "attention" if re.search(r"attn|attention", name) else "mlp"
        return f"block{block.group(1)}.{kind}{lora}"
    if re.search(r"wte|wpe|embed", name):
        return f"embeddings{lora}"
    return f"head{lora}"


# --- measuring ----------------------------------------------------------------------------------

@dataclass
class ExampleShift:
    id: str
    tokens: int
    targets: int
    loss_before: float
    grad_norm: float
    grad_norm_groups: dict[str, float]
    update_norm: float | None  # None: adam with metrics="norms" (it needs each coordinate of g_i)
    loss_after: float | None  # None with metrics="norms"
    loss_drop: float | None
    probe_shift: float | None = None
    hidden_shift: float | None = None
    truncated: bool = False
    token_level: list[TokenShift] | None = None  # with tokens=True
    # A LoRA's per-example update vector is small enough to keep: its cosine to the data set's
    # mean gradient G (does this example pull where the data set pulls?). None otherwise.
    alignment: float | None = None
    # With integrated gradients: Spearman's ρ between the tokens' |IG| and their saliency
    ig_agreement: float | None = None


@dataclass
class TokenShift:
    """One token of an example: its own loss when it is a target, and how much the example's
    loss depends on it as an input: saliency = ‖∂ℓ_i/∂e_t‖ and grad_x_input = e_t·∂ℓ_i/∂e_t at
    the token's input embedding e_t (before any position embedding is added)."""

    position: int
    token: int
    text: str | None
    token_loss: float | None  # None for a token that is not a target (the prompt, the first)
    saliency: float
    grad_x_input: float
    # ‖g_t‖·‖a_t‖ summed in quadrature over the trainable linear layers: the token's own share
    # of the weight gradient (g_t at the layer's output, a_t its input, at position t)
    token_update: float = 0.0
    integrated_gradients: float | None = None  # with ShiftConfig.integrated_gradients


@dataclass
class DatasetShift:
    examples: int
    total_shift: float
    net_shift: float
    coherence: float
    volatility: float
    grad_norm_mean: float
    grad_norm_p50: float
    grad_norm_p90: float
    grad_norm_max: float
    noise_scale: float
    truncated: int
    probe_loss: float | None = None


@dataclass
class ShiftReport:
    examples: list[ExampleShift]
    dataset: DatasetShift
    settings: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {"examples": [asdict(e) for e in self.examples], "dataset": asdict(self.dataset),
                "settings": self.settings}


@dataclass(frozen=True)
class ShiftConfig:
    lr: float = 1e-3
    optimizer: str = "sgd"
    # "full": every figure, from each example's gradient (torch.func vmap); "norms": grad_norm
    # (total, per group), update_norm for sgd, loss_before and the data-set figures, by ghost
    # norms from one backward pass per chunk (workers/jobs/ghost_norms.py), vmap where uncovered
    metrics: str = "full"
    chunk: int | None = None  # examples per vmap chunk; None: as many as fit CHUNK_BUDGET_BYTES
    truncate: bool = True
    progress: bool = False
    tokens: bool = False  # also per-token loss, saliency, gradient x input and token_update
    integrated_gradients: bool = False  # with tokens: Captum's IG per token, the expensive reference
    ig_steps: int = 32


def _ones(ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """An explicit all-ones attention mask. Right padding needs none (attention is causal), but
    without one transformers inspects the ids for padding, which vmap cannot trace."""
    return {"attention_mask": torch.ones_like(ids)}


def masked_mean_loss(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over target tokens; logits (..., T, V), ids and mask (..., T)."""
    losses = F.cross_entropy(logits[..., :-1, :].flatten(0, -2).float(), ids[..., 1:].flatten(),
                             reduction="none").view(ids[..., 1:].shape)
    weights = mask[..., 1:].to(losses.dtype)
    return (losses * weights).sum(-1) / weights.sum(-1)


def measure(
    measured: MeasuredModel,
    examples: Sequence[Example],
    probe: Sequence[Example] = (),
    config: ShiftConfig = ShiftConfig(),
    mean_gradient: Mapping[str, torch.Tensor] | None = None,
) -> ShiftReport:
    """Measure every example's shift of `measured.model` (which is left unchanged).

    A LoRA's `alignment` is the cosine to `mean_gradient` when given (the whole data set's G,
    from `mean_gradient()`, so that a chunk of it is measured like the whole), else to the
    mean gradient of `examples`."""
    if config.optimizer not in OPTIMIZERS:
        raise ShiftInputError(f"optimizer {config.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
    if not (config.lr > 0 and math.isfinite(config.lr)):
        raise ShiftInputError(f"lr {config.lr}: must be a positive number")
    if config.metrics not in METRICS:
        raise ShiftInputError(f"metrics {config.metrics!r}: choose one of {', '.join(METRICS)}")
    model = measured.model
    device = str(next(model.parameters()).device)
    encoded = [encode(e, measured, config.truncate) for e in examples]
    probe_encoded = [encode(e, measured, config.truncate) for e in probe]
    trainable = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    if not trainable:
        raise ShiftInputError("the model has no trainable parameters to take gradients of")
    frozen = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    frozen.update({n: b for n, b in model.named_buffers()})
    groups = {n: parameter_group(n) for n in trainable}

    def example_loss(params: dict[str, torch.Tensor], ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, {**params, **frozen}, (ids[None],), _ones(ids[None])).logits[0]
        return masked_mean_loss(logits, ids, mask)

    per_example_grad = vmap(grad_and_value(example_loss), in_dims=(None, 0, 0))
    ghost = config.metrics == "norms" and ghost_norms.supports(model)
    probe_ids, probe_mask = padded(probe_encoded, device) if probe_encoded else (None, None)
    probe_before = _probe(model, {**trainable, **frozen}, probe_ids, probe_mask) \
        if config.metrics == "full" else None

    n_params = sum(p.numel() for p in trainable.values())
    # Ghost norms hold activations like a training batch; vmap holds B per-example gradients.
    fits = max(1, min(MAX_CHUNK, CHUNK_BUDGET_BYTES // (4 * n_params)))
    chunk = config.chunk or (MAX_CHUNK if ghost else fits)
    grad_sum = {n: torch.zeros_like(p) for n, p in trainable.items()}
    out: list[ExampleShift] = []
    updates: list[torch.Tensor] = []  # a LoRA's per-example update vectors, for alignment
    bar = tqdm(total=len(encoded), unit="ex", disable=not config.progress, file=sys.stderr,
               desc="shift")
    for start in range(0, len(encoded), chunk):
        batch = encoded[start:start + chunk]
        ids, mask = padded(batch, device)
        if ghost:
            try:
                squares, losses = _ghost_chunk(model, ids, mask, grad_sum)
            except ghost_norms.Unsupported:
                if start:  # the model's forward pass cannot change between chunks
                    raise
                ghost = False
        if ghost:
            out += [_norms_only(examples[start + row], enc, {n: float(sq[row]) for n, sq in squares.items()},
                                float(losses[row]), groups, config)
                    for row, enc in enumerate(batch)]
        else:
            grads, losses = per_example_grad(trainable, ids, mask)
            for row, enc in enumerate(batch):
                g = {n: grads[n][row] for n in trainable}
                for n in trainable:
                    grad_sum[n] += g[n]
                if measured.lora:
                    update = torch.cat([_step(g[n], config).flatten() for n in trainable])
                    updates.append(update.double().cpu())
                shift = _norms_only(examples[start + row], enc, {n: _squared(t) for n, t in g.items()},
                                    float(losses[row]), groups, config)
                if config.metrics == "full":
                    _one_step(shift, g, config, trainable, frozen, model, ids[row, :len(enc.ids)],
                              mask[row, :len(enc.ids)], probe_ids, probe_mask, probe_before)
                out.append(shift)
        if config.tokens:
            levels = _token_level(measured, batch, ids, mask, config)
            for shift, (tokens, agreement) in zip(out[start:], levels, strict=True):
                shift.token_level = tokens
                shift.ig_agreement = agreement
        bar.update(len(batch))
    bar.close()
    if updates:
        towards = mean_gradient if mean_gradient is not None else \
            {n: t / len(out) for n, t in grad_sum.items()}
        mean_grad = torch.cat([towards[n].flatten() for n in trainable]).double().cpu()
        for shift, update in zip(out, updates, strict=True):
            shift.alignment = float(F.cosine_similarity(update, mean_grad, dim=0))
    net = math.sqrt(sum(_squared(t) for t in grad_sum.values()))
    dataset = summarize([s.grad_norm for s in out], net, sum(e.truncated for e in encoded),
                        probe_before.loss if probe_before else None)
    settings = {"lr": config.lr, "optimizer": config.optimizer, "trainable_parameters": n_params,
                "lora": measured.lora, "source": measured.source, "probe_examples": len(probe),
                "metrics": config.metrics,
                "method": "ghost norms" if ghost else "torch.func vmap per-example gradients"}
    return ShiftReport(out, dataset, settings)


def _token_level(
    measured: MeasuredModel, batch: Sequence[Encoded], ids: torch.Tensor, mask: torch.Tensor,
    config: ShiftConfig,
) -> list[tuple[list[TokenShift], float | None]]:
    """Per-token losses, input-embedding gradients and weight-gradient shares of one chunk, from
    one backward pass: each example's loss depends on its own rows only, so ∂(Σ_i ℓ_i)/∂x is
    ∂ℓ_i/∂x row by row. With integrated gradients, also each token's IG attribution and, per
    example, the Spearman agreement of |IG| with the cheap saliency."""
    model = measured.model
    embed = model.get_input_embeddings()  # type: ignore[operator]
    inputs = embed(ids).detach().requires_grad_(True)  # (B, T, d)
    positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
    with _linear_shares(model) as shares:
        logits = model(inputs_embeds=inputs, position_ids=positions, **_ones(ids)).logits
        (grad,) = torch.autograd.grad(masked_mean_loss(logits, ids, mask).sum(), [inputs])
    with torch.no_grad():
        token_losses = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten(),
                                       reduction="none").view(ids.shape[0], -1)
        saliency = grad.norm(dim=-1)
        grad_x_input = (grad * inputs).sum(-1)
        token_update = shares.total().sqrt() if shares.squares is not None else torch.zeros_like(saliency)
    ig = _integrated_gradients(model, inputs.detach(), positions, ids, mask, config.ig_steps) \
        if config.integrated_gradients else None
    out = []
    for row, enc in enumerate(batch):
        tokens = [TokenShift(
            position=t, token=token,
            text=measured.decode(token) if measured.decode else None,
            token_loss=float(token_losses[row, t - 1]) if t >= enc.first_target else None,
            saliency=float(saliency[row, t]), grad_x_input=float(grad_x_input[row, t]),
            token_update=float(token_update[row, t]),
            integrated_gradients=float(ig[row, t]) if ig is not None else None,
        ) for t, token in enumerate(enc.ids)]
        agreement = _spearman([abs(t.integrated_gradients or 0.0) for t in tokens],
                              [t.saliency for t in tokens]) if ig is not None else None
        out.append((tokens, agreement))
    return out


class _Shares:
    """Σ over the trainable linear layers of (‖g_t‖·‖a_t‖)², per (example, position): token t's
    own share of each weight gradient g_tᵀa_t (Frobenius norm ‖g_t‖‖a_t‖). A layer run twice
    adds its calls' shares (their cross terms are left out)."""

    def __init__(self) -> None:
        self.squares: torch.Tensor | None = None  # (B, T)

    def add(self, inputs: torch.Tensor, out_grad: torch.Tensor) -> None:
        share = inputs.detach().float().pow(2).sum(-1) * out_grad.detach().float().pow(2).sum(-1)
        self.squares = share if self.squares is None else self.squares + share

    def total(self) -> torch.Tensor:
        assert self.squares is not None
        return self.squares


@contextmanager
def _linear_shares(model: nn.Module) -> Iterator[_Shares]:
    from transformers.pytorch_utils import Conv1D

    shares = _Shares()
    handles = []

    def forward_hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if output.requires_grad and args and args[0].dim() == 3:
            a = args[0]
            output.register_hook(lambda g: shares.add(a, g))  # type: ignore[no-untyped-call]

    for module in model.modules():
        weight = getattr(module, "weight", None)
        trainable = isinstance(weight, nn.Parameter) and weight.requires_grad
        if isinstance(module, (nn.Linear, Conv1D)) and trainable:
            handles.append(module.register_forward_hook(forward_hook))
    try:
        yield shares
    finally:
        for handle in handles:
            handle.remove()


def _integrated_gradients(model: nn.Module, inputs: torch.Tensor, positions: torch.Tensor, ids: torch.Tensor,
                          mask: torch.Tensor, steps: int) -> torch.Tensor:
    """Captum's integrated gradients of each example's loss along the straight path from an
    all-zero input embedding to its own, summed over the embedding dimension: (B, T)."""
    from captum.attr import IntegratedGradients

    def loss_of(embeds: torch.Tensor) -> torch.Tensor:
        # Captum stacks the path's points along the batch: repeat the ids and mask to match.
        reps = embeds.shape[0] // ids.shape[0]
        logits = model(inputs_embeds=embeds, position_ids=positions.repeat(reps, 1),
                       **_ones(ids.repeat(reps, 1))).logits
        return masked_mean_loss(logits, ids.repeat(reps, 1), mask.repeat(reps, 1))

    attributions = IntegratedGradients(loss_of).attribute(inputs, baselines=torch.zeros_like(inputs),
                                                          n_steps=steps, internal_batch_size=ids.shape[0])
    summed: torch.Tensor = attributions.sum(-1).detach()
    return summed


def _spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    if len(a) < 2:
        return None

    def ranks(xs: Sequence[float]) -> list[float]:
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        out = [0.0] * len(xs)
        i = 0
        while i < len(order):  # ties share their mean rank
            j = i
            while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out

    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    var = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return cov / var if var else None


def _ghost_chunk(
    model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, grad_sum: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-example squared norms of one chunk by ghost norms; adds the chunk's Σ g_i to grad_sum."""
    params = dict(model.named_parameters())

    def forward_loss() -> torch.Tensor:
        # Explicit (B, T) positions: a learned position embedding then sees each example's own
        # rows, instead of one (1, T) row broadcast over the batch.
        positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
        logits = model(input_ids=ids, position_ids=positions, **_ones(ids)).logits
        return masked_mean_loss(logits, ids, mask)

    model.zero_grad(set_to_none=True)
    try:
        squares, losses = ghost_norms.per_example_squared_norms(model, forward_loss)
        for n in grad_sum:
            grad = params[n].grad
            if grad is not None:
                grad_sum[n] += grad
    finally:
        model.zero_grad(set_to_none=True)  # the model is left as it was, gradients included
    return squares, losses


def _norms_only(example: Example, enc: Encoded, squares_by_param: Mapping[str, float], loss_before: float,
                groups: Mapping[str, str], config: ShiftConfig) -> ExampleShift:
    squares: dict[str, float] = {}
    for n, square in squares_by_param.items():
        squares[groups[n]] = squares.get(groups[n], 0.0) + square
    grad_norm = math.sqrt(sum(squares.values()))
    return ExampleShift(
        id=example.id, tokens=len(enc.ids), targets=len(enc.ids) - enc.first_target,
        loss_before=loss_before, grad_norm=grad_norm,
        grad_norm_groups={k: math.sqrt(v) for k, v in sorted(squares.items())},
        update_norm=config.lr * grad_norm if config.optimizer == "sgd" else None,
        loss_after=None, loss_drop=None, truncated=enc.truncated,
    )


def _squared(t: torch.Tensor) -> float:
    return float(t.double().pow(2).sum())


def _one_step(
    shift: ExampleShift, g: Mapping[str, torch.Tensor], config: ShiftConfig,
    trainable: Mapping[str, torch.Tensor], frozen: Mapping[str, torch.Tensor], model: nn.Module,
    ids: torch.Tensor, mask: torch.Tensor, probe_ids: torch.Tensor | None, probe_mask: torch.Tensor | None,
    probe_before: _ProbeState | None,
) -> None:
    """Fill in what one step on this example alone changes: its loss, the probe's, the hidden states."""
    step = {n: _step(tensor, config) for n, tensor in g.items()}
    shift.update_norm = math.sqrt(sum(_squared(t) for t in step.values()))
    moved = {n: trainable[n] - step[n] for n in trainable}
    with torch.no_grad():
        logits = functional_call(model, {**moved, **frozen}, (ids[None],), _ones(ids[None])).logits[0]
        shift.loss_after = float(masked_mean_loss(logits, ids, mask))
    shift.loss_drop = shift.loss_before - shift.loss_after
    if probe_before is not None:
        after = _probe(model, {**moved, **frozen}, probe_ids, probe_mask)
        assert after is not None
        shift.probe_shift = after.loss - probe_before.loss
        shift.hidden_shift = float((after.hidden - probe_before.hidden).norm() / probe_before.hidden.norm())


def _step(g: torch.Tensor, config: ShiftConfig) -> torch.Tensor:
    """The update one example alone makes: SGD's lr·g, or Adam's first step from a fresh state
    (bias-corrected m̂ = g and v̂ = g², so lr·g/(|g| + eps))."""
    if config.optimizer == "sgd":
        return config.lr * g
    return config.lr * g / (g.abs() + ADAM_EPS)


@dataclass(frozen=True)
class _ProbeState:
    loss: float  # mean over probe examples of each one's mean target loss
    hidden: torch.Tensor  # last hidden states at the probe's real tokens, (tokens, d)


def _probe(model: nn.Module, params: Mapping[str, torch.Tensor], ids: torch.Tensor | None,
           mask: torch.Tensor | None) -> _ProbeState | None:
    if ids is None or mask is None:
        return None
    with torch.no_grad():
        output = functional_call(model, dict(params), (ids,), {**_ones(ids), "output_hidden_states": True})
        losses = masked_mean_loss(output.logits, ids, mask)
        real = mask.clone()
        real[:, 0] = True  # every position up to the last target is a real token
        real = torch.cumsum(real.flip(-1).long(), -1).flip(-1) > 0
        hidden = output.hidden_states[-1][real]
    return _ProbeState(float(losses.mean()), hidden)


def summarize(norms: Sequence[float], net_shift: float, truncated: int,
              probe_loss: float | None = None) -> DatasetShift:
    """The data-set figures from every example's grad_norm and net_shift = ‖Σ g_i‖."""
    n = len(norms)
    total = sum(norms)
    mean_norm = total / n
    mean_grad_sq = (net_shift / n) ** 2  # ‖G‖²
    # tr(Σ) = mean ‖g_i − G‖² = mean ‖g_i‖² − ‖G‖² (population covariance)
    trace = max(0.0, sum(x * x for x in norms) / n - mean_grad_sq)
    ordered = sorted(norms)
    return DatasetShift(
        examples=n, total_shift=total, net_shift=net_shift, coherence=net_shift / total if total else 0.0,
        volatility=statistics.pstdev(norms) / mean_norm if mean_norm else 0.0,
        grad_norm_mean=mean_norm, grad_norm_p50=_quantile(ordered, 0.5),
        grad_norm_p90=_quantile(ordered, 0.9), grad_norm_max=ordered[-1],
        noise_scale=trace / mean_grad_sq if mean_grad_sq else math.inf,
        truncated=truncated, probe_loss=probe_loss,
    )


def probe_loss(measured: MeasuredModel, probe: Sequence[Example], truncate: bool = True) -> float | None:
    """The probe set's mean loss (each example's mean target loss, averaged), None without one."""
    if not probe:
        return None
    model = measured.model
    device = str(next(model.parameters()).device)
    ids, mask = padded([encode(e, measured, truncate) for e in probe], device)
    state = _probe(model, dict(model.named_parameters()), ids, mask)
    return state.loss if state else None


def mean_gradient(measured: MeasuredModel, examples: Sequence[Example], truncate: bool = True,
                  chunk: int = MAX_CHUNK) -> dict[str, torch.Tensor]:
    """G = mean g_i over the trainable parameters, by plain batched backward passes: the gradient
    of Σ_i ℓ_i is Σ_i g_i. A chunked measurement needs it before its first chunk (a LoRA's
    alignment, and net_shift once a resumed measurement no longer holds its earlier chunks)."""
    model = measured.model
    device = str(next(model.parameters()).device)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    total = {n: torch.zeros_like(p) for n, p in trainable.items()}
    encoded = [encode(e, measured, truncate) for e in examples]
    for start in range(0, len(encoded), chunk):
        ids, mask = padded(encoded[start:start + chunk], device)
        positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
        logits = model(input_ids=ids, position_ids=positions, **_ones(ids)).logits
        grads = torch.autograd.grad(masked_mean_loss(logits, ids, mask).sum(), list(trainable.values()),
                                    allow_unused=True)
        for (n, _), g in zip(trainable.items(), grads, strict=True):
            if g is not None:
                total[n] += g.detach()
    return {n: t / len(encoded) for n, t in total.items()}


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# --- the command --------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.jobs.shift", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="a run's artifact directory, a "
                        "transformers causal-LM directory, or a peft adapter directory")
    parser.add_argument("--data", required=True, type=Path, help="JSONL: {\"text\"} or {\"prompt\", "
                        "\"completion\"} per line, optional \"id\"")
    parser.add_argument("--probe", type=Path, help="JSONL probe set for probe_shift and hidden_shift")
    parser.add_argument("--lr", type=float, default=ShiftConfig.lr, help="step size of the one-example step")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=ShiftConfig.optimizer)
    parser.add_argument("--metrics", choices=METRICS, default=ShiftConfig.metrics,
                        help="full: every figure; norms: gradient norms and the data-set figures only, "
                        "by ghost norms (one backward pass per chunk)")
    parser.add_argument("--tokens", action="store_true", help="also per-token loss, saliency and "
                        "gradient x input (in the JSON)")
    parser.add_argument("--integrated-gradients", action="store_true", help="with --tokens: Captum's "
                        "integrated gradients per token and their agreement with saliency (slow)")
    parser.add_argument("--chunk", type=int, help="examples per vectorised chunk (default: by memory)")
    parser.add_argument("--no-truncate", action="store_true", help="refuse examples longer than the context")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    try:
        if args.chunk is not None and args.chunk < 1:
            raise ShiftInputError("--chunk must be at least 1")
        examples = read_examples(args.data)
        probe = read_examples(args.probe) if args.probe else []
        device = "cuda" if torch.cuda.is_available() else "cpu"
        measured = load_model(args.model, device)
        started = time.perf_counter()
        report = measure(measured, examples, probe, ShiftConfig(
            lr=args.lr, optimizer=args.optimizer, metrics=args.metrics, chunk=args.chunk,
            tokens=args.tokens or args.integrated_gradients, integrated_gradients=args.integrated_gradients,
            truncate=not args.no_truncate,
            progress=not args.json or sys.stderr.isatty()))
    except ShiftInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report.settings["seconds"] = round(time.perf_counter() - started, 3)
    report.settings["device"] = device
    if args.json:
        print(json.dumps(report.public(), sort_keys=True))
    else:
        print(_render(report))
    return 0


def _render(report: ShiftReport) -> str:
    d = report.dataset
    lines = [f"{d.examples} examples: total_shift {d.total_shift:.4g}, net_shift {d.net_shift:.4g}, "
             f"coherence {d.coherence:.3f}, volatility {d.volatility:.3f}, noise_scale {d.noise_scale:.4g}"
             + (f", {d.truncated} truncated" if d.truncated else "")]
    top = sorted(report.examples, key=lambda e: e.grad_norm, reverse=True)[:10]
    lines.append(f"{'example':>12} {'grad_norm':>10} {'loss':>8} {'drop':>9} {'probe':>9}")
    for e in top:
        probe = "" if e.probe_shift is None else f"{e.probe_shift:+.2e}"
        drop = "" if e.loss_drop is None else f"{e.loss_drop:+.2e}"
        lines.append(f"{e.id:>12} {e.grad_norm:>10.4g} {e.loss_before:>8.3f} {drop:>9} {probe:>9}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
