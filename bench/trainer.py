"""Trainer benchmark: knobs' training loop against Hugging Face `Trainer`, same model, same data.

    .venv/bin/python -m bench.trainer [--quick] [--json [OUT]] [--rounds N] [--peak-flops FLOPS] [--no-gpu]

On the CPU, fp32: training throughput (tokens/s) of `workers.jobs.train.run_training` (the
loop every knobs run goes through) and of `transformers.Trainer`, in one process, on the
same freshly initialised model, the same packed token blocks in the same order, the same
number of optimizer steps and the same optimizer, schedule and clipping; their ratio, and
the final training loss of each (close losses say both trained the same thing). With a GPU:
the same for a GPT-2-small-sized model (12 layers, 12 heads, d_model 768, context 1024) at
bf16 autocast, plus model FLOPs utilisation (MFU = 6·N·tokens/s ÷ the GPU's peak dense bf16).

What is timed, on each side the same way: the wall time (`time.perf_counter`) from the end of
optimizer step `w` to the end of the last step, so steps w+1..N; tokens/s is
(N - w) x batch_size x context_length over that time. The first `w` steps (2 on the CPU, 5 on
a GPU) are excluded on both sides: they pay one-off costs (AdamW allocating its state on the
first step, the allocator growing, cuBLAS choosing kernels) that say nothing about a long run.
A timed step therefore includes everything the loop does between two optimizer steps:
fetching the next batch from its own data pipeline, forward, backward, clipping, the
optimizer and learning-rate updates, and each trainer's own bookkeeping.

- knobs: `run_training(params, seed, [], out_dir, hooks=[clock])`, as a user runs it. The
  clock is a per-step hook (`StepInfo`), called right after `loss.item()`, which waits for
  the device, so its timestamps are the real ends of steps. Not timed: building the
  corpus, the tokenizer and the model, counting FLOPs on the first batch (one untimed
  forward and backward that run_training does before its loop), evaluation (none asked),
  saving. The trainer's own `costs["tokens_per_s"]` (its loop, all N steps) is reported
  beside, in the JSON.
- Hugging Face: `Trainer.train()` with `max_steps=N`, a `TrainerCallback` stamping
  `on_step_end` (after the optimizer, scheduler and `zero_grad`; on a GPU it synchronises
  the device at the two boundary steps only, so HF keeps whatever overlap it gets). Not
  timed: building the model, `Trainer.__init__`, and in `train()` everything before the
  end of step `w` (creating the optimizer, the scheduler and the dataloader) or after the
  last step. Its own `train_runtime` (the whole `train()` call) is reported in the JSON.
  A two-line subclass keeps each step's loss (`loss.detach()`, no device sync) and input
  ids, for the loss and data checks.

Fairness, stated so the figures can be judged:

- Data: the blocks are cut once by the project's own functions (`load_corpus`,
  `train_tokenizer`, `packed_batches`, exactly as `run_training` calls them, so the same
  seed gives the same blocks) and handed to HF as rows of a tensor dataset with
  `train_sampling_strategy="sequential"` and `per_device_train_batch_size=batch_size`, so
  HF's step k sees knobs' step k block. Both sides' batches are checked against them.
- Model: `workers.jobs.train.build_model` under `torch.manual_seed(seed)` for HF, the same
  call run_training makes, so both start from the same weights: the first step's loss
  (same weights, same batch, before any update) must agree on both sides.
- Optimizer: torch AdamW, betas (0.9, 0.95), eps 1e-8, the same weight decay on the same
  parameters (matrices; not biases, LayerNorms), clipping at `grad_clip`. The same
  implementation too: the fused AdamW on both sides, CPU and GPU (knobs' choice, and HF's
  own default `optim="adamw_torch_fused"` with torch >= 2.8).
- Schedule: HF `cosine_warmup_with_min_lr` with `min_lr = lr / 10` and the same
  `warmup_steps`, the stock HF schedule closest to knobs' `lr_at`: the same linear warm-up
  ((k+1)/warmup · lr at step k), then cosine to lr/10, HF's one step ahead of knobs' (it
  reaches lr/10 at the last step, knobs one step later): at most 1.5 % of lr apart at 97
  steps, 6 % at 24. (HF's plain `cosine`/`cosine_with_min_lr` start the warm-up at lr 0,
  a lost first step; at lr 3e-3 that alone moved the 4-layer model's final loss after 40
  steps by 0.25 nats.)
- Loss: HF passes `num_items_in_batch` (the shifted labels' count) and divides a summed
  loss by it; knobs takes the model's mean. The same number, up to rounding.
- Precision and threads: fp32 on the CPU (bf16 autocast with fp32 weights on a GPU, HF
  `bf16=True` being the same autocast); the same `torch.get_num_threads()` on both sides
  (run_training sets it to the usable cores; it is set to the same before HF, and checked).
- HF does no evaluation, saving, logging or reporting (`eval_strategy`, `save_strategy`,
  `logging_strategy` "no", `report_to="none"`), `dataloader_num_workers=0`, no tqdm.
- One process, sequential. Each configuration is run `--rounds` times per side (3 by
  default, 1 with `--quick`), alternating who goes first (knobs, HF, then HF, knobs), and
  the fastest run of each side is reported beside every run's figure: on a shared machine
  run-to-run noise (10-20 % here) is larger than most differences between the two loops.
  Losses and batches are the same in every round (fixed seeds, deterministic on the CPU).
- With a GPU, the GPU section runs first; then, for the CPU section, knobs' device choice
  (`TrainConfig.from_params` asks `torch.cuda.is_available()`) is told there is no GPU
  while it builds its config and trains, so CPU figures stay CPU figures (HF gets
  `use_cpu=True`). GPU first, so that library caches of "is CUDA available" are filled
  with the truth before anything is told otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import math
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.utils import logging as hf_logging

from bench.common import machine, table
from workers.data.sources import load_corpus
from workers.data.tokenizer import Tokenizer, train_tokenizer
from workers.jobs.train import StepInfo, TrainConfig, build_model, packed_batches, run_training

SEED = 0
HF_SCHEDULER = "cosine_warmup_with_min_lr"  # the stock HF schedule closest to knobs' lr_at
LAST_STEPS = 10  # the final loss is the mean of the last 10 steps' losses, as TrainResult's
# First-step losses must agree this closely: same weights, same batch, no update yet. Two
# different initialisations differ by far more than the fp32 bound.
INITIAL_LOSS_TOL = {"float32": 1e-4, "bfloat16": 5e-3}
# Peak dense bf16 tensor FLOP/s by device name, most specific first (NVIDIA data sheets).
PEAK_BF16_FLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989e12),
    ("H100 NVL", 835e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM
    ("A100", 312e12),
)


@dataclass(frozen=True)
class Case:
    """One configuration, trained by both sides: TrainingParams, and steps not timed."""

    name: str
    params: dict[str, Any]
    warmup: int  # the first `warmup` steps are not timed
    cpu: bool = True  # train on the CPU even where a GPU is present


def cpu_cases(quick: bool) -> list[Case]:
    """The knobs defaults (per-step overhead shows) and a model 24x larger (matmuls dominate)."""
    small_steps, large_steps = (24, 6) if quick else (97, 24)
    block = 16 * 128
    return [
        Case("2L d64 ctx128 b16 (defaults)", {"train_tokens": small_steps * block}, warmup=2),
        Case(
            "4L d256 ctx128 b16",
            {"n_layer": 4, "n_head": 4, "d_model": 256, "train_tokens": large_steps * block},
            warmup=2,
        ),
    ]


def gpu_case(quick: bool) -> Case:
    """GPT-2 small's shape. The BPE vocabulary is what the biographies corpus supports (about
    2,000 tokens, not GPT-2's 50,257), so N is about 87M rather than 124M."""
    steps, batch, context = (12, 16, 1024) if quick else (40, 16, 1024)
    return Case(
        "GPT-2 small 12L d768 ctx1024 b16 bf16",
        {
            "n_layer": 12, "n_head": 12, "d_model": 768, "context_length": context,
            "batch_size": batch, "vocab_size": 50257, "train_tokens": steps * batch * context,
            "precision": "bf16", "lr": 6e-4, "warmup_fraction": 0.1,
        },
        warmup=5,
        cpu=False,
    )


@dataclass
class Side:
    """What one trainer did on one case."""

    trainer: str
    steps: int
    timed_steps: int
    timed_tokens: int
    timed_s: float
    losses: list[float]
    step_ends: list[float]  # perf_counter at the end of each step
    threads: int
    batches_identical: bool
    reported: dict[str, float] = field(default_factory=dict)  # the trainer's own figures

    @property
    def tokens_per_s(self) -> float:
        return self.timed_tokens / self.timed_s if self.timed_s > 0 else 0.0

    @property
    def initial_loss(self) -> float:
        return self.losses[0] if self.losses else math.nan

    @property
    def final_loss(self) -> float:
        last = self.losses[-LAST_STEPS:]
        return sum(last) / len(last) if last else math.nan

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k not in ("losses", "step_ends")},
            "tokens_per_s": self.tokens_per_s,
            "ms_per_step": 1000 * self.timed_s / self.timed_steps if self.timed_steps else None,
            "initial_loss": self.initial_loss,
            "final_loss": self.final_loss,
            "losses": self.losses,
            "step_ms": [round(1000 * (b - a), 2) for a, b in itertools.pairwise(self.step_ends)],
        }


@dataclass
class Workload:
    """The resolved config, the tokenizer and the blocks both sides train on, in order."""

    cfg: TrainConfig
    tokenizer: Tokenizer
    blocks: list[torch.Tensor]  # cfg.steps tensors of (batch_size, context_length) token ids


def timed_window(stamps: Sequence[float], warmup: int, tokens_per_step: int) -> tuple[int, int, float]:
    """(timed steps, timed tokens, seconds) from the end of step `warmup` to the end of the last."""
    timed = len(stamps) - warmup
    if timed < 1:
        raise ValueError(f"{len(stamps)} steps leave none to time after {warmup} warm-up steps")
    return timed, timed * tokens_per_step, stamps[-1] - stamps[warmup - 1]


def prepare(case: Case, out_dir: Path) -> Workload:
    """Cut the blocks as run_training does: its corpus, its tokenizer, its packing, its seed."""
    cfg = TrainConfig.from_params(case.params, seed=SEED, out_dir=out_dir)
    corpus = load_corpus(
        cfg.corpus, n_people=cfg.n_people, qa_fraction=cfg.qa_fraction,
        data_format=cfg.format, repetitions=cfg.repetitions, seed=cfg.data_seed,
    )
    tokenizer = train_tokenizer(cfg.tokenizer, corpus.train, cfg.vocab_size)
    cfg = replace(cfg, tokenizer_vocab_size=tokenizer.vocab_size)
    batches = packed_batches(tokenizer.encode_batch(corpus.train), cfg, tokenizer.eos_id)
    return Workload(cfg, tokenizer, [next(batches) for _ in range(cfg.steps)])


def same_batches(seen: Sequence[torch.Tensor], blocks: Sequence[torch.Tensor]) -> bool:
    return len(seen) == len(blocks) and all(
        torch.equal(s.cpu(), b) for s, b in zip(seen, blocks, strict=True)
    )


# --- knobs: the real trainer ----------------------------------------------------------------


def run_knobs(case: Case, work: Workload, out_dir: Path) -> Side:
    """run_training as users run it, with a per-step hook as the clock."""
    stamps: list[float] = []
    losses: list[float] = []
    seen: list[torch.Tensor] = []
    threads: list[int] = []

    def clock(info: StepInfo) -> None:
        # Called after loss.item(), so the device has finished the step.
        stamps.append(time.perf_counter())
        losses.append(info.loss)
        seen.append(info.batch)  # a reference; compared after the run
        if not threads:
            threads.append(torch.get_num_threads())

    result = run_training(case.params, SEED, [], out_dir, hooks=[clock])
    timed, tokens, seconds = timed_window(stamps, case.warmup, work.cfg.tokens_per_step)
    return Side(
        trainer="knobs run_training", steps=len(stamps), timed_steps=timed, timed_tokens=tokens,
        timed_s=seconds, losses=losses, step_ends=stamps, threads=threads[0],
        batches_identical=same_batches(seen, work.blocks),
        reported={
            "tokens_per_s": result.costs["tokens_per_s"], "train_s": result.costs["train_s"],
            "wall_s": result.costs["wall_s"], "params_total": result.costs["params_total"],
            **({"flops_per_step": result.costs["flops_measured"] / result.costs["steps"]}
               if "flops_measured" in result.costs else {}),
        },
    )


# --- Hugging Face Trainer -------------------------------------------------------------------


class _Rows(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """The blocks as rows: HF's sequential sampler and batch size give back block k at step k."""

    def __init__(self, blocks: Sequence[torch.Tensor]) -> None:
        self.rows = torch.cat(list(blocks))  # (steps * batch_size, context_length)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.rows[i], "labels": self.rows[i]}


class _RecordingTrainer(Trainer):
    """Trainer, keeping each step's loss and input ids (references: no copy, no device sync)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_losses: list[torch.Tensor] = []
        self.step_inputs: list[torch.Tensor] = []

    def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        loss = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)
        self.step_losses.append((loss[0] if isinstance(loss, tuple) else loss).detach())
        self.step_inputs.append(inputs["input_ids"])
        return loss


class _StepClock(TrainerCallback):
    """Stamps the end of every optimizer step; on a GPU, waits for it at the window's edges."""

    def __init__(self, cuda: bool, sync_steps: set[int]) -> None:
        self.cuda, self.sync_steps = cuda, sync_steps
        self.stamps: list[float] = []
        self.threads = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.threads = torch.get_num_threads()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.cuda and state.global_step in self.sync_steps:
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())


def run_hf(case: Case, work: Workload, out_dir: Path) -> Side:
    """transformers.Trainer on the same model, blocks, optimizer, schedule and clipping."""
    cfg = work.cfg
    cuda = cfg.device == "cuda"
    torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, work.tokenizer)
    args = TrainingArguments(
        output_dir=str(out_dir),
        max_steps=cfg.steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        adam_beta1=cfg.betas[0],
        adam_beta2=cfg.betas[1],
        adam_epsilon=1e-8,
        max_grad_norm=cfg.grad_clip,
        lr_scheduler_type=HF_SCHEDULER,
        lr_scheduler_kwargs={"min_lr": cfg.min_lr},
        warmup_steps=cfg.warmup_steps,
        optim="adamw_torch_fused",
        bf16=cfg.dtype == "bfloat16",
        use_cpu=not cuda,
        seed=cfg.seed,
        train_sampling_strategy="sequential",
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
        disable_tqdm=True,
    )
    clock = _StepClock(cuda, {case.warmup, cfg.steps})
    trainer = _RecordingTrainer(model=model, args=args, train_dataset=_Rows(work.blocks), callbacks=[clock])
    trainer.remove_callback(PrinterCallback)  # it prints the final metrics even with logging off
    output = trainer.train()
    losses = [float(x) for x in torch.stack(trainer.step_losses).float().cpu().tolist()]
    timed, tokens, seconds = timed_window(clock.stamps, case.warmup, cfg.tokens_per_step)
    side = Side(
        trainer=f"transformers.Trainer {_version('transformers')}", steps=len(clock.stamps),
        timed_steps=timed, timed_tokens=tokens, timed_s=seconds, losses=losses,
        step_ends=clock.stamps, threads=clock.threads,
        batches_identical=same_batches(trainer.step_inputs, work.blocks),
        reported={
            "train_runtime": float(output.metrics["train_runtime"]),
            "train_loss": float(output.metrics["train_loss"]),
            "tokens_per_s": output.metrics["train_samples_per_second"] * cfg.context_length,
        },
    )
    del trainer, model
    return side


# --- the run ----------------------------------------------------------------------------------


@dataclass
class CaseResult:
    case: Case
    device: str
    dtype: str
    params_total: float
    vocab: int
    knobs: Side
    hf: Side
    peak_flops: float | None = None
    rounds_tokens_per_s: dict[str, list[float]] = field(default_factory=dict)  # every run, in order
    every_batch_identical: bool = True  # in every run, not only the fastest

    @property
    def ratio(self) -> float:
        return self.knobs.tokens_per_s / self.hf.tokens_per_s if self.hf.tokens_per_s > 0 else math.inf

    def mfu(self, side: Side) -> float | None:
        """6·N·tokens/s over the device's peak; None without a peak."""
        if not self.peak_flops:
            return None
        return 6 * self.params_total * side.tokens_per_s / self.peak_flops

    def checks(self) -> dict[str, Any]:
        tol = INITIAL_LOSS_TOL.get(self.dtype, 5e-3)
        return {
            "steps_equal": self.knobs.steps == self.hf.steps,
            "batches_identical": self.every_batch_identical,
            "threads_equal": self.knobs.threads == self.hf.threads,
            "initial_loss_equal": abs(self.knobs.initial_loss - self.hf.initial_loss) <= tol,
            "losses_finite": all(math.isfinite(x) for x in self.knobs.losses + self.hf.losses),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.case.name, "params": self.case.params, "warmup_steps_untimed": self.case.warmup,
            "device": self.device, "dtype": self.dtype, "params_total": self.params_total,
            "tokenizer_vocab": self.vocab, "knobs": self.knobs.to_json(), "hf": self.hf.to_json(),
            "knobs_over_hf": self.ratio,
            "rounds_tokens_per_s": self.rounds_tokens_per_s,
            "final_loss_diff": self.knobs.final_loss - self.hf.final_loss,
            "peak_flops": self.peak_flops,
            "mfu_knobs": self.mfu(self.knobs), "mfu_hf": self.mfu(self.hf),
            "checks": self.checks(),
        }


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def device_choice(case: Case) -> Iterator[None]:
    """For a CPU case, hide a GPU from knobs' device choice (TrainConfig.from_params asks
    torch.cuda.is_available()); nothing to hide without one."""
    if case.cpu and torch.cuda.is_available():
        with mock.patch("torch.cuda.is_available", return_value=False):
            yield
    else:
        yield


def run_case(case: Case, workdir: Path, rounds: int, peak_flops: float | None = None) -> CaseResult:
    """`rounds` runs of each side, alternating who goes first (knobs, HF, HF, knobs, ...); the
    fastest run of each side is reported, every run's figure is kept."""
    with device_choice(case):
        work = prepare(case, workdir / "blocks")
    runs: dict[str, list[Side]] = {"knobs": [], "hf": []}
    print(f"  {case.name}:", end="", flush=True)
    for r in range(rounds):
        order = ("knobs", "hf") if r % 2 == 0 else ("hf", "knobs")
        for who in order:
            print(f" {'knobs' if who == 'knobs' else 'HF'} ...", end="", flush=True)
            out_dir = workdir / f"{who}{r}"
            if who == "knobs":
                with device_choice(case):
                    runs[who].append(run_knobs(case, work, out_dir))
            else:
                runs[who].append(run_hf(case, work, out_dir))
            free_memory()
    print(" done", flush=True)
    knobs, hf = (max(runs[who], key=lambda side: side.tokens_per_s) for who in ("knobs", "hf"))
    return CaseResult(
        case, work.cfg.device, work.cfg.dtype, knobs.reported["params_total"], work.tokenizer.vocab_size,
        knobs, hf, peak_flops,
        rounds_tokens_per_s={who: [side.tokens_per_s for side in sides] for who, sides in runs.items()},
        every_batch_identical=all(side.batches_identical for sides in runs.values() for side in sides),
    )


def device_peak_flops(name: str) -> float | None:
    for key, peak in PEAK_BF16_FLOPS:
        if key.lower() in name.lower():
            return peak
    return None


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}"


def rows_of(results: Sequence[CaseResult], with_mfu: bool) -> tuple[list[str], list[list[str]]]:
    headers = ["config", "params", "steps (timed)", "timed tokens", "knobs tok/s", "HF tok/s",
               "knobs/HF", "final loss knobs", "final loss HF"]
    if with_mfu:
        headers += ["MFU knobs", "MFU HF"]
    rows = []
    for r in results:
        row = [
            r.case.name, si(r.params_total), f"{r.knobs.steps} ({r.knobs.timed_steps})",
            f"{r.knobs.timed_tokens:,}", f"{r.knobs.tokens_per_s:,.0f}", f"{r.hf.tokens_per_s:,.0f}",
            f"{r.ratio:.2f}x", f"{r.knobs.final_loss:.4f}", f"{r.hf.final_loss:.4f}",
        ]
        if with_mfu:
            row += [_pct(r.mfu(r.knobs)), _pct(r.mfu(r.hf))]
        rows.append(row)
    return headers, rows


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def report_lines(results: Sequence[CaseResult]) -> list[str]:
    """The table's companions: every run's figure, first-step losses, each trainer's own figures."""
    lines = []
    for r in results:
        runs = "; ".join(
            f"{label} " + " / ".join(f"{x:,.0f}" for x in r.rounds_tokens_per_s[who])
            for who, label in (("knobs", "knobs"), ("hf", "HF"))
        )
        lines += [
            f"  {r.case.name}:",
            f"    tok/s of every run: {runs}",
            f"    ms/step knobs {1000 * r.knobs.timed_s / r.knobs.timed_steps:.1f}, "
            f"HF {1000 * r.hf.timed_s / r.hf.timed_steps:.1f}; first-step loss (same weights, same batch) "
            f"knobs {r.knobs.initial_loss:.6f}, HF {r.hf.initial_loss:.6f}",
            f"    as each reports itself: knobs costs.tokens_per_s {r.knobs.reported['tokens_per_s']:,.0f} "
            f"(its loop, all steps); HF train_samples_per_second x context "
            f"{r.hf.reported['tokens_per_s']:,.0f} (the whole train() call)",
        ]
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.trainer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few steps (a smoke run, under a minute)")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="OUT",
                   help="the figures as JSON: to OUT, or to stdout after the table without OUT")
    p.add_argument("--peak-flops", type=float, default=None,
                   help="the GPU's peak dense bf16 FLOP/s for MFU (default: from the device name)")
    p.add_argument("--rounds", type=int, default=None,
                   help="runs of each side per configuration, alternating who goes first; the fastest "
                   "of each is reported (default 3, 1 with --quick)")
    p.add_argument("--no-gpu", action="store_true", help="skip the GPU section even with a GPU")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if rounds < 1:
        print("--rounds must be at least 1", file=sys.stderr)
        return 2
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    info: dict[str, Any] = {
        "machine": machine(), "torch": torch.__version__, "transformers": _version("transformers"),
        "accelerate": _version("accelerate"), "quick": args.quick, "rounds": rounds, "seed": SEED,
    }
    with tempfile.TemporaryDirectory(prefix="knobs-bench-trainer-") as tmp:
        workdir = Path(tmp)
        gpu: CaseResult | None = None
        gpu_note = "no GPU: skipped"
        if torch.cuda.is_available() and not args.no_gpu:
            name = torch.cuda.get_device_name(0)
            peak = args.peak_flops or device_peak_flops(name)
            info["gpu"] = {"name": name, "peak_bf16_flops": peak}
            print(f"GPU ({name}), bf16 autocast:", flush=True)
            gpu = run_case(gpu_case(args.quick), workdir / "gpu", rounds, peak)
        elif args.no_gpu:
            gpu_note = "GPU: skipped (--no-gpu)"
        print("CPU, fp32:", flush=True)
        cpu = [run_case(c, workdir / f"cpu{i}", rounds) for i, c in enumerate(cpu_cases(args.quick))]

    m = info["machine"]
    threads = cpu[0].knobs.threads
    lines = [
        "",
        f"machine: {m['cpu']}; {m['cores']} cores ({m['cores_usable']} usable); {m['ram_gib']} GiB RAM; "
        f"Python {m['python']}; torch {info['torch']}; transformers {info['transformers']}; "
        f"accelerate {info['accelerate']}",
        "workload: the biographies corpus, BPE, GPT-2 from config; AdamW (0.9, 0.95) wd 0.1, clip 1.0, "
        "warm-up (5% CPU, 10% GPU) then cosine to lr/10; the same blocks, in the same order, on both sides",
        "timed: steps after the first few (untimed on both sides), end of step to end of step; "
        "tok/s = timed steps x batch x context / seconds",
        f"rounds: {rounds} run(s) of each side per configuration, alternating who goes first; "
        "the table shows each side's fastest",
        "",
        f"CPU, fp32, {threads} threads:",
        table(*rows_of(cpu, with_mfu=False)),
        *report_lines(cpu),
        "",
    ]
    if gpu is not None:
        peak = gpu.peak_flops
        flops_note = f"peak {si(peak)}FLOP/s" if peak else "peak unknown: pass --peak-flops for MFU"
        lines += [
            f"GPU, {info['gpu']['name']}, bf16 autocast; MFU = 6*N*tok/s / peak dense bf16 ({flops_note}):",
            table(*rows_of([gpu], with_mfu=True)),
            *report_lines([gpu]),
        ]
        counted = gpu.knobs.reported.get("flops_per_step")
        if counted and peak:
            per_token = counted * gpu.knobs.timed_steps / gpu.knobs.timed_tokens
            lines.append(
                f"  with FLOPs counted by torch (attention included, {si(per_token)}FLOP/token vs "
                f"6N = {si(6 * gpu.params_total)}): "
                f"MFU knobs {_pct(per_token * gpu.knobs.tokens_per_s / peak)}, "
                f"HF {_pct(per_token * gpu.hf.tokens_per_s / peak)}"
            )
    else:
        lines.append(gpu_note)

    all_results = [*cpu, *([gpu] if gpu is not None else [])]
    checks = {r.case.name: r.checks() for r in all_results}
    ok = all(all(c.values()) for c in checks.values())
    failed = [f"{name}: {k}" for name, c in checks.items() for k, v in c.items() if not v]
    lines += [
        "",
        "checks: " + ("ok (same steps, identical batches, same threads, same first-step loss, finite losses)"
                      if ok else "FAILED: " + "; ".join(failed)),
    ]
    print("\n".join(lines))
    if args.json is not None:
        payload = {
            **info,
            "cpu": [r.to_json() for r in cpu],
            "gpu": gpu.to_json() if gpu is not None else {"skipped": gpu_note},
            "ok": ok,
        }
        text = json.dumps(payload, indent=2)
        if args.json == "-":
            print(text)
        else:
            out = Path(args.json)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text + "\n")
            print(f"figures written to {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
