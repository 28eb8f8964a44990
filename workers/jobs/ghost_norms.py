"""Per-example gradient norms from one backward pass, without per-example gradients ("ghost norms").

For a linear map y = a Wᵀ + b applied at T positions, example i's weight gradient is
G_i = Σ_t g_t a_tᵀ (g: the gradient at the output, a: the input), so
‖G_i‖² = Σ_{t,s} (g_t·g_s)(a_t·a_s): two T×T Gram matrices instead of a d_out×d_in matrix per
example (Goodfellow 2015; Li et al. 2022, "Large Language Models Can Be Strong Differentially
Private Learners"). Per layer the cheaper of that and the materialised G_i is taken:
T²(d_in + d_out) against T·d_in·d_out. An embedding's rows are scattered, so
‖E_i‖² = Σ_{t,s} [id_t = id_s] g_t·g_s; norms' and biases' per-example gradients are small and
materialised. When the output head shares the token embedding's weight (GPT-2, tied Llama),
the cross term 2⟨E_i, H_i⟩ = 2 Σ_{t,s} δ_t[id_s] (a_t·g_s) is added, so the norm is that of the
summed gradient.

Covered: nn.Linear, transformers' Conv1D (GPT-2), nn.Embedding, nn.LayerNorm and RMSNorm-style
modules with a `weight` and `variance_epsilon`/`eps`; a LoRA's A and B are nn.Linear. Any other
trainable parameter, or any other sharing, makes `supports()` say no, and the caller takes the
vmap path. One backward of Σ_i ℓ_i gives every example's own output gradients, because no
operation in these models mixes examples.
"""
# ruff: noqa: RUF002

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

try:  # transformers' GPT-2 linear layer: y = x W + b with W (d_in, d_out)
    from transformers.pytorch_utils import Conv1D
except ImportError:  # pragma: no cover - transformers is a dependency of the workers extra
    Conv1D = ()  # type: ignore[assignment,misc]


def _kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, Conv1D):
        return "conv1d"
    if isinstance(module, nn.Embedding):
        return "embedding"
    if isinstance(module, nn.LayerNorm):
        return "layernorm"
    weight = getattr(module, "weight", None)
    if type(module).__name__.endswith("RMSNorm") and isinstance(weight, nn.Parameter):
        return "rmsnorm"
    return None


class Unsupported(Exception):
    """The forward pass did something ghost norms cannot follow (a module run twice); use vmap."""


@dataclass
class _Capture:
    module: nn.Module
    kind: str
    calls: int = 0
    inputs: torch.Tensor | None = None  # (B, T, d_in), or ids (B, T) for an embedding
    grad_out: torch.Tensor | None = None  # (B, T, d_out)
    handles: list[torch.utils.hooks.RemovableHandle] = field(default_factory=list)


def _owners(model: nn.Module) -> dict[str, list[tuple[nn.Module, str, str]]]:
    """Trainable parameter name -> every (module, its kind, attribute) that uses it."""
    by_id: dict[int, str] = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    owners: dict[str, list[tuple[nn.Module, str, str]]] = {n: [] for n in by_id.values()}
    for module in model.modules():
        for attr, param in module.named_parameters(recurse=False):
            name = by_id.get(id(param))
            if name is not None:
                owners[name].append((module, _kind(module) or "unsupported", attr))
    return owners


def supports(model: nn.Module) -> bool:
    """Whether every trainable parameter sits in a covered module, shared at most as embedding + head.

    What the forward pass does is seen only when it runs: a module called twice raises
    `Unsupported` from `per_example_squared_norms`."""
    tied_heads = (["conv1d", "embedding"], ["embedding", "linear"])
    for uses in _owners(model).values():
        kinds = sorted(kind for _, kind, _ in uses)
        alone = len(uses) == 1 and kinds != ["unsupported"]
        tied = kinds in tied_heads and all(attr == "weight" for _, _, attr in uses)
        if not (alone or tied):
            return False
    return True


def per_example_squared_norms(
    model: nn.Module, forward_loss: Callable[[], torch.Tensor]
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """{parameter name: (B,) squared norm of each example's gradient}, and (B,) per-example losses.

    `forward_loss()` runs the model on the batch and returns the (B,) per-example losses; one
    backward of their sum fills each parameter's .grad with Σ_i g_i (left for the caller).
    """
    owners = _owners(model)
    captures: dict[int, _Capture] = {}
    for uses in owners.values():
        for module, kind, _ in uses:
            if id(module) not in captures:
                captures[id(module)] = _hook(module, kind)
    try:
        losses = forward_loss()
        losses.sum().backward()  # type: ignore[no-untyped-call]
    finally:
        for capture in captures.values():
            for handle in capture.handles:
                handle.remove()
    out: dict[str, torch.Tensor] = {}
    for name, uses in owners.items():
        parts = [_squared(captures[id(module)], attr) for module, _, attr in uses]
        total = sum(parts[1:], parts[0])
        if len(uses) == 2:
            embedding = next(captures[id(m)] for m, kind, _ in uses if kind == "embedding")
            head = next(captures[id(m)] for m, kind, _ in uses if kind != "embedding")
            total = total + 2 * _embedding_head_cross(embedding, head)
        out[name] = total.clamp_min(0)
    return out, losses.detach()


def _hook(module: nn.Module, kind: str) -> _Capture:
    capture = _Capture(module, kind)

    def keep_output_grad(grad: torch.Tensor) -> None:
        capture.grad_out = grad.detach()

    def on_forward(_: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        capture.calls += 1
        capture.inputs = args[0].detach()
        if output.requires_grad:
            output.register_hook(keep_output_grad)  # type: ignore[no-untyped-call]

    capture.handles.append(module.register_forward_hook(on_forward))
    return capture


def _squared(c: _Capture, attr: str) -> torch.Tensor:
    """(B,) squared norm of each example's gradient of `c.module.<attr>`."""
    a, g = c.inputs, c.grad_out
    if c.calls != 1 or a is None or g is None:
        raise Unsupported(f"{type(c.module).__name__} ran {c.calls} times in one forward pass")
    g = g.double()
    if attr == "bias":
        return g.flatten(1, -2).sum(1).pow(2).sum(-1)
    if c.kind in ("linear", "conv1d"):
        a = a.double().flatten(1, -2)  # (B, T, d_in)
        g = g.flatten(1, -2)  # (B, T, d_out)
        t, d_in, d_out = a.shape[1], a.shape[2], g.shape[2]
        if t * (d_in + d_out) < d_in * d_out:  # ghost: two T x T Gram matrices
            return (torch.einsum("btd,bsd->bts", a, a) * torch.einsum("btd,bsd->bts", g, g)).sum((1, 2))
        return torch.einsum("bto,bti->boi", g, a).pow(2).sum((1, 2))  # materialised G_i
    if c.kind == "embedding":
        same = (a[:, :, None] == a[:, None, :]).to(g.dtype)  # [id_t = id_s]
        return (same * torch.einsum("btd,bsd->bts", g, g)).sum((1, 2))
    normalised = _normalised_input(c)
    return (g * normalised).flatten(1, -2).sum(1).pow(2).sum(-1)


def _normalised_input(c: _Capture) -> torch.Tensor:
    """x̂, the input as the norm saw it before its weight: (x − mean)/σ, or x/rms."""
    assert c.inputs is not None
    x = c.inputs.double()
    if c.kind == "layernorm":
        eps = float(c.module.eps)  # type: ignore[arg-type]
        mean = x.mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps)
    eps = float(getattr(c.module, "variance_epsilon", getattr(c.module, "eps", 1e-6)))
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def _embedding_head_cross(embedding: _Capture, head: _Capture) -> torch.Tensor:
    """(B,) ⟨E_i, H_i⟩ for a head that reuses the embedding matrix (V, d) as its weight."""
    ids, g_embed = embedding.inputs, embedding.grad_out
    a_head, delta = head.inputs, head.grad_out
    assert ids is not None and g_embed is not None and a_head is not None and delta is not None
    # δ_t[id_s]: the head's output gradient at position t, read at the token of position s
    index = ids[:, None, :].expand(-1, delta.shape[1], -1)  # (B, T_head, T_embed)
    picked = delta.double().gather(-1, index)
    return (picked * torch.einsum("btd,bsd->bts", a_head.double(), g_embed.double())).sum((1, 2))
