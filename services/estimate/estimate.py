"""The page estimate: N A4 pages -> distillates (generation time) -> cloud tokens x epochs
(training time), with low/high bounds and every input it used."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from events.store import EventStore
from services.core import plugins
from services.core.errors import BadInput
from services.estimate.calibration import Rate, generation_rate, measured_runs, rate_of
from services.estimate.formulas import BASES, Model, flops_per_token, memory_bytes
from services.estimate.gpus import Gpu, find_gpu
from services.estimate.pages import PASSAGE_CHARS, PageTokens

ESTIMATOR_VERSION = "1"
# Assumed when the log has no measurement (shown as 'assumed' in the inputs):
DEFAULT_GENERATION = Rate(value=30.0, low=15.0, high=60.0, n=0,
                          source="assumed: 15-60 completion tokens/s per request (no uncached LLM "
                                 "distillates in the log)")
DEFAULT_EFFICIENCY = Rate(value=0.375, low=0.25, high=0.5, n=0,
                          source="assumed: MFU 0.25-0.5, the range reported for well-tuned transformer "
                                 "training (PaLM, Chowdhery et al. 2022, Table 3: 46.2%); "
                                 "no GPU runs in the log")
LENS_PROMPT_TOKENS = 150  # the lens instructions around each passage (assumed, not measured)


@dataclass(frozen=True)
class Request:
    pages: list[int]
    lenses: int = 4
    samples: int = 1
    epochs: int = 3
    base: str = "smollm2-135m"
    gpu: str | None = None  # a table name, 'auto', or None for this machine's CPU
    efficiency: float | None = None
    concurrency: int = 1
    context: int = 1024
    batch: int = 8

    def validate(self) -> None:
        problems = []
        if not self.pages or any(p <= 0 for p in self.pages):
            problems.append(f"pages must be positive integers, not {self.pages}")
        for name in ("lenses", "samples", "epochs", "concurrency", "context", "batch"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.efficiency is not None and not 0 < self.efficiency <= 1:
            problems.append(f"efficiency must be in (0, 1], not {self.efficiency}")
        if self.base not in BASES:
            problems.append(f"unknown base {self.base!r}; known: {', '.join(BASES)}")
        if problems:
            raise BadInput("; ".join(problems))


def parse_pages(text: str) -> list[int]:
    """'1,10,100' -> [1, 10, 100]; anything but positive integers is BadInput."""
    try:
        pages = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise BadInput(f"--pages takes positive integers separated by commas (e.g. 1,10,100), "
                       f"not {text!r}") from None
    if not pages or any(p <= 0 for p in pages):
        raise BadInput(f"--pages takes positive integers separated by commas (e.g. 1,10,100), not {text!r}")
    return pages


@dataclass
class Device:
    label: str
    flops_per_s: Rate
    gpu: Gpu | None = None
    notes: list[str] = field(default_factory=list)


def gpu_efficiency(store: EventStore) -> Rate | None:
    """Achieved / peak of every GPU run in the log whose GPU is in the table."""
    values = []
    for run in measured_runs(store):
        if not run.is_gpu:
            continue
        try:
            gpu = find_gpu(run.gpu_name)
        except BadInput:
            gpu = None  # a GPU not in the table: no peak to divide by
        if gpu is not None:
            values.append(run.flops_per_s / gpu.peak_flops)
    return rate_of(values, f"measured: {len(values)} GPU runs in the log") if values else None


def training_device(store: EventStore, request: Request) -> Device:
    notes = []
    name = request.gpu
    if name == "auto":
        seen = plugins.executor("torch_devices")()
        if seen:
            name = seen[0]["name"]
            notes.append(f"--gpu auto: torch sees {name}")
        else:
            name = None
            notes.append("--gpu auto: torch sees no GPU here; using this machine's CPU calibration")
    if name is None:
        cpu = [r.flops_per_s for r in measured_runs(store) if not r.is_gpu]
        if not cpu:
            raise BadInput("no CPU runs in the log to calibrate this machine from: train one "
                           "(`knobs experiment run SPEC`) or pass --gpu NAME")
        return Device("this machine's CPU", rate_of(cpu, f"measured: {len(cpu)} CPU runs in the log "
                                                         "(achieved 6ND-or-4ND FLOP/s over train_s)"),
                      notes=notes)
    gpu = find_gpu(name)
    if request.efficiency is not None:
        eff = Rate(request.efficiency, request.efficiency, request.efficiency, 0, "given: --efficiency")
    else:
        eff = gpu_efficiency(store) or DEFAULT_EFFICIENCY
    flops = Rate(gpu.peak_flops * eff.value, gpu.peak_flops * eff.low, gpu.peak_flops * eff.high, eff.n,
                 f"{gpu.name} dense bf16 peak {gpu.peak_flops / 1e12:g} TFLOP/s x efficiency "
                 f"{eff.value:.3g} ({eff.low:.3g}-{eff.high:.3g}; {eff.source})")
    return Device(gpu.name, flops, gpu=gpu, notes=notes)


def check_memory(model: Model, device: Device, request: Request) -> dict[str, float]:
    need = memory_bytes(model, request.context, request.batch)
    if device.gpu is not None and need["total"] > device.gpu.memory_bytes:
        parts = ", ".join(f"{k} {v / 1e9:.1f} GB" for k, v in need.items() if k != "total")
        raise BadInput(f"{model.name} ({model.mode} training, context {request.context}, batch "
                       f"{request.batch}) needs {need['total'] / 1e9:.1f} GB ({parts}) but {device.gpu.name} "
                       f"has {device.gpu.memory_bytes / 1e9:g} GB: lower --batch or --context, use LoRA "
                       "(--base smollm2-135m), or pick a larger GPU")
    return need


def estimate(store: EventStore, request: Request, page_tokens: PageTokens) -> dict[str, Any]:
    request.validate()
    model = BASES[request.base]
    device = training_device(store, request)
    memory = check_memory(model, device, request)
    gen = generation_rate(store) or DEFAULT_GENERATION
    per_token = flops_per_token(model.mode, model.params)
    tpp, chars = page_tokens.mean, page_tokens.chars_mean
    rows = []
    for pages in request.pages:
        tokens = pages * tpp
        passages = math.ceil(pages * chars / PASSAGE_CHARS)
        requests = passages * request.lenses * request.samples
        completion = tokens * request.lenses * request.samples  # a rewrite is about its passage's length
        prompt = completion + requests * LENS_PROMPT_TOKENS
        parallel = request.concurrency
        gen_s, gen_lo, gen_hi = (completion / (r * parallel) for r in (gen.value, gen.high, gen.low))
        train_tokens = completion * request.epochs
        flops = per_token * train_tokens
        tr_s, tr_lo, tr_hi = (flops / f for f in (device.flops_per_s.value, device.flops_per_s.high,
                                                 device.flops_per_s.low))
        # the spread of tokens per page widens the bounds too
        lo_scale, hi_scale = page_tokens.low / tpp, page_tokens.high / tpp
        rows.append({"pages": pages, "tokens": round(tokens), "passages": passages, "requests": requests,
                     "prompt_tokens": round(prompt), "completion_tokens": round(completion),
                     "train_tokens": round(train_tokens), "flops": flops,
                     "generate_s": gen_s, "train_s": tr_s, "total_s": gen_s + tr_s,
                     "low_s": (gen_lo + tr_lo) * lo_scale, "high_s": (gen_hi + tr_hi) * hi_scale})
    inputs = {
        "estimator_version": ESTIMATOR_VERSION,
        "base": model.name, "mode": model.mode, "params": model.params, "params_trainable": model.trainable,
        "flops_per_token": per_token,
        "flops_formula": "6·N·D (full training)" if model.mode == "full" else "4·N·D (LoRA on a frozen base)",
        "tokens_per_page": page_tokens.to_json(),
        "passage_chars": PASSAGE_CHARS, "lenses": request.lenses, "samples": request.samples,
        "epochs": request.epochs, "lens_prompt_tokens": LENS_PROMPT_TOKENS,
        "generation_tokens_per_s": {"value": gen.value, "low": gen.low, "high": gen.high, "n": gen.n,
                                    "source": gen.source, "concurrency": request.concurrency},
        "training_device": device.label,
        "training_flops_per_s": {"value": device.flops_per_s.value, "low": device.flops_per_s.low,
                                 "high": device.flops_per_s.high, "n": device.flops_per_s.n,
                                 "source": device.flops_per_s.source},
        "memory_bytes": memory, "context": request.context, "batch": request.batch,
        "gpu_memory_bytes": device.gpu.memory_bytes if device.gpu else None,
        "gpu_source": device.gpu.source if device.gpu else None,
        "gpu_verified": device.gpu.verified if device.gpu else None,
        "notes": device.notes,
    }
    return {"estimates": rows, "inputs": inputs}
