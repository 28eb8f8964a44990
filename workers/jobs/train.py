"""The training job: one small causal LM, trained from a transformers config on one corpus.

Read it top-down, like nanoGPT's train.py: resolve the config, build the corpus and the
tokenizer, build the model (or load a base checkpoint and wrap it with LoRA adapters), pack
documents into blocks, run AdamW with warm-up and cosine decay (recording per-example influence
every `influence_every` steps when asked: influence_record.py), then evaluate, account the
costs and save everything next to the resolved config. Nothing is downloaded.

    python -m workers.jobs.train --params '{"n_layer": 2}' --seed 0 \
        --benchmarks qa_exact_match,heldout_loss --out runs/demo
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from pydantic import ValidationError
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedModel
from transformers.utils import logging as hf_logging

from events.models.training import INFLUENCE_EXAMPLES_DEFAULT, RECORDED_IN_TRAINING, TrainingParams
from workers.data.corpus import Corpus
from workers.data.pairs import Pairs
from workers.data.sources import load_corpus
from workers.data.tokenizer import Tokenizer, train_tokenizer
from workers.jobs import battery  # noqa: F401  # registers the repetition experiment's battery
from workers.jobs.checkpoint import (
    CONFIG_FILE,
    LOSS_TYPE,
    MODEL_DIR,
    TOKENIZER_DIR,
    InvalidTrainingConfig,
    TrainingError,
    load_checkpoint,
    read_config,
)
from workers.jobs.cost import measure_flops, run_costs
from workers.jobs.evaluate import BENCHMARKS, Score, evaluate
from workers.jobs.influence_record import INFLUENCE_FILE, InfluenceRecorder, tracked_documents
from workers.jobs.pretrained import Pretrained, PretrainedUnavailable, load_pretrained

RESULT_FILE = "result.json"
# The world of the biographies corpus is the same for every run, so two runs differ only in
# what their knobs say; `seed` drives initialisation and data order.
DATA_SEED = 0
LORA_TARGETS = {"gpt2": ("c_attn",), "llama": ("q_proj", "v_proj")}
# A run on a base checkpoint inherits these from the base: the weights fix them.
# A job's output is its result, not loading and saving bars.
hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
ARCHITECTURE_KNOBS = ("model_family", "n_layer", "n_head", "d_model", "d_ff", "tokenizer", "vocab_size")
# Physics of LM 3.1's two protocols as corpus formats: mix training puts the QA group's pairs
# in the pretraining corpus, in documents of their own; pretrain + finetune reads biographies
# only, then fine-tunes on the QA group's pairs (the second stage of run_training).
PROTOCOL_FORMATS = {"mixed": "qa", "pretrain_finetune": "plain"}


class TrainingOutOfMemory(TrainingError):
    """The run did not fit in memory; lower batch_size, context_length or the model size."""


class TrainingDiverged(TrainingError):
    """The loss became NaN or infinite; lower lr or raise warmup_fraction."""


@dataclass
class TrainConfig:
    """Every knob of TrainingParams, the seed, and every value derived from them."""

    # --- architecture
    model_family: str
    n_layer: int
    n_head: int
    d_model: int
    d_ff: int  # resolved: 4 * d_model unless set
    context_length: int
    tokenizer: str
    vocab_size: int  # requested (BPE); the trained tokenizer's size is tokenizer_vocab_size
    # --- data
    corpus: str
    pairs_sha256: str | None  # corpus 'pairs:PATH': its pair set, checked on load, resolved when not given
    n_people: int
    qa_fraction: float
    format: str
    repetitions: int
    train_tokens: int
    # --- optimisation
    lr: float
    batch_size: int
    warmup_fraction: float
    weight_decay: float
    grad_clip: float
    # --- LoRA
    lora_rank: int | None
    lora_alpha: float
    lora_targets: str
    base_run: str | None
    base_model: str | None
    precision: str
    # --- influence recording inside training (workers/jobs/influence_record.py)
    influence_every: int | None
    influence_examples: int | None  # resolved: INFLUENCE_EXAMPLES_DEFAULT when recording, else None
    # --- the repetition experiment (services/repetition)
    condition: str | None
    K: int | None
    cloud: str | None
    protocol: str | None
    finetune_tokens: int | None  # resolved: a quarter of the pretraining's under pretrain_finetune
    epochs: float | None
    # --- the run
    seed: int
    out_dir: str
    base_checkpoint: str | None
    cloud_file: str | None  # the cloud's accepted rewrites, written by the attempt (workers/cloud.py)
    # --- derived
    tokens_per_step: int  # batch_size * context_length
    steps: int  # train_tokens // tokens_per_step, or epochs over the corpus once it is tokenised
    finetune_steps: int  # pretrain_finetune: finetune_tokens // tokens_per_step; else 0
    data_format: str  # the corpus format used: `format`, or what `protocol` implies
    warmup_steps: int
    min_lr: float  # the cosine decays to lr / 10, as in nanoGPT and Chinchilla
    betas: tuple[float, float]
    device: str  # "cuda" or "cpu"
    dtype: str  # autocast dtype: "bfloat16" or "float32" (weights stay fp32)
    lora_target_modules: list[str]
    data_seed: int
    num_threads: int
    tokenizer_vocab_size: int = 0  # set once the tokenizer is trained or loaded
    base_model_file: str | None = None  # base_model: the GGUF it was read from, and its sha256
    base_model_sha256: str | None = None

    @classmethod
    def from_params(
        cls, params: dict[str, Any], *, seed: int, out_dir: Path, base_checkpoint: Path | None = None,
        cloud_file: Path | None = None,
    ) -> TrainConfig:
        try:
            knobs = TrainingParams.model_validate(params).model_dump()
        except ValidationError as exc:
            raise InvalidTrainingConfig(f"invalid training params: {exc}") from exc
        if base_checkpoint is not None:
            base = read_config(base_checkpoint)
            knobs.update({k: base[k] for k in ARCHITECTURE_KNOBS})  # the weights decide these
            if knobs["context_length"] > base["context_length"]:
                raise InvalidTrainingConfig(
                    f"context_length {knobs['context_length']} exceeds the base model's "
                    f"{base['context_length']} positions; use at most that"
                )
        elif knobs["base_model"] is not None:
            knobs["model_family"] = "llama"  # every known base is a Llama; the rest is read on load
        elif knobs["lora_rank"] is not None or knobs["base_run"]:
            raise InvalidTrainingConfig(
                f"base_run {knobs['base_run']!r} needs its checkpoint: pass base_checkpoint "
                "(the base run's artifact directory)"
            )
        tokens_per_step = knobs["batch_size"] * knobs["context_length"]
        steps = knobs["train_tokens"] // tokens_per_step
        if steps < 1:
            raise InvalidTrainingConfig(
                f"train_tokens={knobs['train_tokens']} is less than one step of "
                f"batch_size * context_length = {tokens_per_step} tokens; raise train_tokens"
            )
        if knobs["cloud"] and cloud_file is None:
            raise InvalidTrainingConfig(
                f"cloud {knobs['cloud']!r} needs its rewrites: pass cloud_file (the attempt writes it "
                "from the log)")
        finetune_tokens = knobs["finetune_tokens"]
        if knobs["protocol"] == "pretrain_finetune" and finetune_tokens is None:
            finetune_tokens = max(tokens_per_step, knobs["train_tokens"] // 4)
        finetune_steps = (finetune_tokens or 0) // tokens_per_step
        if knobs["protocol"] == "pretrain_finetune" and finetune_steps < 1:
            raise InvalidTrainingConfig(
                f"finetune_tokens={finetune_tokens} is less than one step of {tokens_per_step} tokens; "
                "raise finetune_tokens")
        data_format = PROTOCOL_FORMATS.get(knobs["protocol"] or "", knobs["format"])
        cuda = torch.cuda.is_available()
        if knobs["precision"] == "auto":
            dtype = "bfloat16" if cuda and torch.cuda.is_bf16_supported() else "float32"
        else:
            dtype = {"fp32": "float32", "bf16": "bfloat16"}[knobs["precision"]]
        if knobs["lora_targets"] == "auto":
            targets = list(LORA_TARGETS[knobs["model_family"]])
        else:
            targets = [t.strip() for t in knobs["lora_targets"].split(",") if t.strip()]
        return cls(
            **{**knobs, "d_ff": knobs["d_ff"] or 4 * knobs["d_model"],
               "influence_examples": None if knobs["influence_every"] is None
               else knobs["influence_examples"] or INFLUENCE_EXAMPLES_DEFAULT,
               "finetune_tokens": finetune_tokens},
            seed=seed,
            out_dir=str(out_dir),
            base_checkpoint=str(Path(base_checkpoint).resolve()) if base_checkpoint else None,
            cloud_file=str(Path(cloud_file).resolve()) if cloud_file else None,
            tokens_per_step=tokens_per_step,
            steps=steps,
            finetune_steps=finetune_steps,
            data_format=data_format,
            warmup_steps=int(knobs["warmup_fraction"] * steps),
            min_lr=knobs["lr"] / 10,
            betas=(0.9, 0.95),
            device="cuda" if cuda else "cpu",
            dtype=dtype,
            lora_target_modules=targets,
            data_seed=DATA_SEED,
            num_threads=available_cores(),
        )


@dataclass
class StepInfo:
    """What a per-step hook sees, right after the optimizer step.

    The step's gradients are still on the parameters (they are cleared at the start of the
    next step), so a hook can read them; a hook must not change the model or the batch.
    """

    step: int  # optimizer steps taken so far: 1 after the first
    total_steps: int
    model: nn.Module
    batch: torch.Tensor  # (batch_size, context_length) token ids; the labels are the same ids
    loss: float
    lr: float
    tokens: int  # tokens processed so far
    elapsed_s: float
    optimizer: torch.optim.Optimizer


StepHook = Callable[[StepInfo], None]
Progress = Callable[[int, int, float, int, float], None]  # (step, total_steps, loss, tokens, elapsed_s)


@dataclass
class TrainResult:
    config: dict[str, Any]
    scores: dict[str, Score]
    costs: dict[str, float]
    device: str
    artifact: str
    unavailable: dict[str, str] = field(default_factory=dict)  # benchmark -> why it was not computed
    initial_loss: float = math.nan  # the first step's training loss
    final_loss: float = math.nan  # mean training loss of the last 10 steps

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def build_model(cfg: TrainConfig, tokenizer: Tokenizer) -> PreTrainedModel:
    """A freshly initialised model of the configured family (dropout off: we train for few
    epochs on a fixed corpus and want every step to count)."""
    model: PreTrainedModel
    if cfg.model_family == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(
            vocab_size=tokenizer.vocab_size, n_positions=cfg.context_length, n_embd=cfg.d_model,
            n_layer=cfg.n_layer, n_head=cfg.n_head, n_inner=cfg.d_ff,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            bos_token_id=tokenizer.eos_id, eos_token_id=tokenizer.eos_id, pad_token_id=tokenizer.pad_id,
        ))
    else:
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=tokenizer.vocab_size, max_position_embeddings=cfg.context_length,
            hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layer,
            num_attention_heads=cfg.n_head, num_key_value_heads=cfg.n_head,
            intermediate_size=cfg.d_ff, tie_word_embeddings=True,  # tied, like GPT-2, so sizes compare
            bos_token_id=tokenizer.eos_id, eos_token_id=tokenizer.eos_id, pad_token_id=tokenizer.pad_id,
        ))
    model.loss_type = LOSS_TYPE
    return model


def influence_recorder(cfg: TrainConfig, corpus: Corpus, tokenizer: Tokenizer) -> InfluenceRecorder | None:
    """The influence recorder the run asks for (influence_every), or None. Its documents are
    tokenised as packed_batches frames them: each led by the end-of-text token."""
    if cfg.influence_every is None:
        return None
    assert cfg.influence_examples is not None  # resolved with influence_every
    return InfluenceRecorder(
        every=cfg.influence_every, documents=corpus.train,
        indices=tracked_documents(corpus.train, cfg.influence_examples, cfg.data_seed),
        encode_document=lambda text: [tokenizer.eos_id, *tokenizer.encode(text)],
        context_length=cfg.context_length, lora=cfg.lora_rank is not None,
    )


def packed_batches(
    documents: Sequence[Sequence[int]], cfg: TrainConfig, eos_id: int
) -> Iterator[torch.Tensor]:
    """Endless (batch_size, context_length) blocks cut from a stream of documents, each led
    by an end-of-text token. Each epoch visits the documents in a fresh order drawn from a
    generator seeded by the run's seed, so the data order is a function of the seed alone."""
    rng = np.random.default_rng(cfg.seed)
    docs = [np.asarray([eos_id, *doc], dtype=np.int64) for doc in documents]
    need = cfg.batch_size * cfg.context_length
    buffer = np.zeros(0, dtype=np.int64)
    while True:
        while len(buffer) < need:  # blocks run across epoch boundaries; nothing is dropped
            buffer = np.concatenate([buffer, *(docs[i] for i in rng.permutation(len(docs)))])
        block, buffer = buffer[:need], buffer[need:]
        yield torch.from_numpy(block.copy()).view(cfg.batch_size, cfg.context_length)


def new_optimizer(trainable: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only (not on biases and norms)."""
    return torch.optim.AdamW(
        [
            {"params": [p for p in trainable if p.dim() >= 2], "weight_decay": cfg.weight_decay},
            {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0},
        ],
        # The fused kernel exists on CPU and GPU (torch >= 2.4): 3-6x faster per step than
        # the per-tensor loop on a CPU (bench/trainer.py), and HF Trainer's default too.
        lr=cfg.lr, betas=cfg.betas, fused=True,
    )


def train_loop(
    model: nn.Module, optimizer: torch.optim.Optimizer, trainable: list[nn.Parameter],
    batches: Iterator[torch.Tensor], cfg: TrainConfig, loss_of: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device, on_step: Callable[[StepInfo], None],
) -> list[float]:
    """`cfg.steps` optimizer steps with warm-up and cosine decay; the training loss of each."""
    losses: list[float] = []
    for step in range(cfg.steps):
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = next(batches).to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(batch)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        optimizer.step()

        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise TrainingDiverged(
                f"loss is {loss_value} at step {step + 1} of {cfg.steps} (lr {cfg.lr}): "
                "lower lr or raise warmup_fraction"
            )
        losses.append(loss_value)
        on_step(StepInfo(step + 1, cfg.steps, model, batch, loss_value, lr,
                         (step + 1) * cfg.tokens_per_step, 0.0, optimizer))
    return losses


def with_steps(cfg: TrainConfig, steps: int) -> TrainConfig:
    """`cfg` for a loop of `steps` optimizer steps, its warm-up scaled to match."""
    steps = max(1, steps)
    return replace(cfg, steps=steps, warmup_steps=int(cfg.warmup_fraction * steps))


def with_pretrained(cfg: TrainConfig, model: PreTrainedModel, base: Pretrained) -> TrainConfig:
    """`cfg` with the architecture the pretrained weights fix, and where they came from."""
    c = model.config
    if cfg.context_length > c.max_position_embeddings:
        raise InvalidTrainingConfig(f"context_length {cfg.context_length} exceeds {base.name}'s "
                                    f"{c.max_position_embeddings} positions")
    return replace(cfg, n_layer=c.num_hidden_layers, n_head=c.num_attention_heads, d_model=c.hidden_size,
                   d_ff=c.intermediate_size, vocab_size=c.vocab_size, tokenizer=base.name,
                   base_model_file=str(base.path), base_model_sha256=base.sha256)


def finetune_documents(corpus: Corpus) -> list[str]:
    """The second stage of pretrain_finetune: the QA group's pairs, one document each."""
    if not corpus.qa_eval_seen:
        raise InvalidTrainingConfig("pretrain_finetune needs a QA group to fine-tune on: raise qa_fraction")
    return [pair.text for pair in corpus.qa_eval_seen]


def read_rewrites(path: Path) -> dict[str, list[str]]:
    """A cloud file (workers/cloud.py writes it): one JSON line per accepted rewrite,
    {"subject": full name, "text": ...} of a biographies person or {"pair": pair id, "text": ...}
    of a question-answer pair, in the cloud's order; subject or pair id -> texts."""
    out: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.setdefault(row["subject"] if "subject" in row else row["pair"], []).append(row["text"])
    return out


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to lr, then cosine decay to min_lr (step counts from 0)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


@contextmanager
def out_of_memory_as_error(cfg: TrainConfig) -> Iterator[None]:
    """Report running out of memory as TrainingOutOfMemory, with what to try next."""
    try:
        yield
    except (torch.cuda.OutOfMemoryError, MemoryError) as exc:
        raise TrainingOutOfMemory(
            f"out of memory on {cfg.device} ({cfg.n_layer} layers, d_model {cfg.d_model}, batch "
            f"{cfg.batch_size} x {cfg.context_length} tokens): lower batch_size, context_length "
            f"or the model size"
        ) from exc


def run_training(
    params: dict[str, Any],
    seed: int,
    benchmarks: Sequence[str],
    out_dir: Path,
    base_checkpoint: Path | None = None,
    progress: Progress | None = None,
    hooks: Sequence[StepHook] = (),
    cloud_file: Path | None = None,
) -> TrainResult:
    """Train one model as `params` say, evaluate `benchmarks`, save it all under `out_dir`."""
    started = time.perf_counter()
    cfg = TrainConfig.from_params(params, seed=seed, out_dir=Path(out_dir), base_checkpoint=base_checkpoint,
                                  cloud_file=cloud_file)
    unknown = [name for name in benchmarks if name not in BENCHMARKS]
    if unknown:
        raise InvalidTrainingConfig(f"unknown benchmarks {unknown}; known: {sorted(BENCHMARKS)}")
    torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    # Weights and optimizer state stay fp32; bf16 autocast runs the matmuls in bf16.
    autocast: AbstractContextManager[Any] = nullcontext()
    if cfg.dtype == "bfloat16":
        autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    with out_of_memory_as_error(cfg):
        # --- data: the corpus, and a tokenizer trained on its training documents (or the base's)
        try:
            corpus: Corpus = load_corpus(
                cfg.corpus, n_people=cfg.n_people, qa_fraction=cfg.qa_fraction,
                data_format=cfg.data_format, repetitions=cfg.repetitions, seed=cfg.data_seed,
                condition=cfg.condition, copies=cfg.K,
                rewrites=read_rewrites(Path(cfg.cloud_file)) if cfg.cloud_file else None,
                pairs_sha256=cfg.pairs_sha256,
            )
        except ValueError as exc:
            raise InvalidTrainingConfig(str(exc)) from exc
        if isinstance(corpus, Pairs):  # the data's identity travels with the run's config
            cfg = replace(cfg, pairs_sha256=corpus.sha256)
        model: PreTrainedModel | PeftModel
        if cfg.base_checkpoint is not None:
            model, tokenizer, _ = load_checkpoint(Path(cfg.base_checkpoint))
        elif cfg.base_model is not None:
            try:
                model, tokenizer, base = load_pretrained(cfg.base_model)
            except PretrainedUnavailable as exc:
                raise InvalidTrainingConfig(str(exc)) from exc
            cfg = with_pretrained(cfg, model, base)
        else:
            try:
                tokenizer = train_tokenizer(cfg.tokenizer, corpus.train, cfg.vocab_size)
            except ValueError as exc:
                raise InvalidTrainingConfig(str(exc)) from exc
            model = build_model(cfg, tokenizer)
        cfg = replace(cfg, tokenizer_vocab_size=tokenizer.vocab_size)
        documents = tokenizer.encode_batch(corpus.train)
        if cfg.epochs is not None:  # equal exposures: the corpus's size decides the steps
            corpus_tokens = sum(len(d) + 1 for d in documents)  # each led by end-of-text
            cfg = with_steps(cfg, math.ceil(cfg.epochs * corpus_tokens / cfg.tokens_per_step))
        batches = packed_batches(documents, cfg, tokenizer.eos_id)

        # --- model: LoRA adapters on the base when asked, otherwise every weight trains
        if cfg.lora_rank is not None:
            try:
                model = get_peft_model(model, LoraConfig(
                    r=cfg.lora_rank, lora_alpha=cfg.lora_alpha,  # type: ignore[arg-type]  # a float works
                    target_modules=cfg.lora_target_modules,
                    lora_dropout=0.0, bias="none", fan_in_fan_out=cfg.model_family == "gpt2",
                ))
            except ValueError as exc:  # peft names the target modules it could not find
                raise InvalidTrainingConfig(f"lora_targets {cfg.lora_targets!r}: {exc}") from exc
        model.to(device)  # type: ignore[arg-type]  # transformers wraps .to in a decorator mypy misreads
        model.train()
        recorder = influence_recorder(cfg, corpus, tokenizer)
        if recorder is not None:
            hooks = [*hooks, lambda info: recorder.on_step(info.step, info.total_steps, info.model)]

        # --- optimizer: AdamW, weight decay on matrices only (not on biases and norms)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = new_optimizer(trainable, cfg)

        def loss_of(batch: torch.Tensor) -> torch.Tensor:
            with autocast:
                loss: torch.Tensor = model(input_ids=batch, labels=batch).loss  # labels are shifted inside
                return loss

        # FLOPs of one forward+backward, counted once on the first batch (which is then trained on).
        first = next(batches).to(device)
        flops_per_step = measure_flops(lambda: loss_of(first).backward())  # type: ignore[no-untyped-call]
        batches = itertools.chain([first], batches)

        # --- the loop (pretrain_finetune: then a second one, on the QA group's pairs)
        loop_started = time.perf_counter()
        total_steps = cfg.steps + cfg.finetune_steps

        def report(step: int, loss: float, tokens: int) -> None:
            if progress is not None:
                progress(step, total_steps, loss, tokens, time.perf_counter() - started)

        def on_step(info: StepInfo) -> None:
            for hook in hooks:
                hook(replace(info, elapsed_s=time.perf_counter() - started))
            report(info.step, info.loss, info.tokens)

        losses = train_loop(model, optimizer, trainable, batches, cfg, loss_of, device, on_step)
        if cfg.finetune_steps:
            qa_documents = tokenizer.encode_batch(finetune_documents(corpus))
            stage = with_steps(cfg, cfg.finetune_steps)
            optimizer = new_optimizer(trainable, cfg)  # a fresh optimizer, as a fine-tune starts
            losses += train_loop(
                model, optimizer, trainable, packed_batches(qa_documents, stage, tokenizer.eos_id), stage,
                loss_of, device,
                lambda info: report(cfg.steps + info.step, info.loss,
                                    (cfg.steps + info.step) * cfg.tokens_per_step),
            )
        train_s = time.perf_counter() - loop_started

        # --- evaluate, account, save
        # Without a recorder the recorded benchmarks go to the evaluator, which reports them
        # unavailable with the reason, like any benchmark a run cannot support.
        recorded = [b for b in benchmarks if b in RECORDED_IN_TRAINING] if recorder else []
        with autocast:
            scores, unavailable = evaluate(
                model, tokenizer, corpus, device, [b for b in benchmarks if b not in recorded]
            )
        if recorder is not None:
            scores.update(recorder.scores(recorded))
        costs = run_costs(
            model, tokens=total_steps * cfg.tokens_per_step, steps=total_steps,
            wall_s=time.perf_counter() - started, train_s=train_s, device=device,
            flops_per_step=flops_per_step,
        )

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out / MODEL_DIR))  # peft saves the adapters only
    tokenizer.save(out / TOKENIZER_DIR)
    (out / CONFIG_FILE).write_text(json.dumps(asdict(cfg), indent=2))
    if recorder is not None:
        recorder.write(out / INFLUENCE_FILE)
    device_name = f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else (
        f"cpu ({cfg.num_threads} threads)"
    )
    result = TrainResult(
        config=asdict(cfg), scores=scores, costs=costs, device=device_name, artifact=str(out.resolve()),
        unavailable=unavailable, initial_loss=losses[0], final_loss=float(np.mean(losses[-10:])),
    )
    (out / RESULT_FILE).write_text(json.dumps(result.to_json(), indent=2))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run one training from the command line; print the result as one JSON line, or
    {"error": {"kind": ..., "reason": ...}} and exit 2 (invalid), 3 (out of memory) or 1."""
    parser = argparse.ArgumentParser(prog="python -m workers.jobs.train", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="{}", help="TrainingParams as a JSON object")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--benchmarks", default="", help="comma-separated benchmark names")
    parser.add_argument("--out", type=Path, required=True, help="directory for the checkpoint")
    parser.add_argument("--base", type=Path, default=None, help="the base run's checkpoint directory (LoRA)")
    parser.add_argument("--cloud-file", type=Path, default=None,
                        help="the rewrites of the `cloud` knob's distillation (JSONL: subject or pair, text)")
    parser.add_argument("--progress", action="store_true", help="print each step as a JSON line on stderr")
    args = parser.parse_args(argv)

    def fail(kind: str, exc: Exception, code: int) -> int:
        # kind is one of events' RunFailed kinds
        print(json.dumps({"error": {"kind": kind, "reason": str(exc)}}), flush=True)
        return code

    def report(step: int, total_steps: int, loss: float, tokens: int, elapsed_s: float) -> None:
        line = dict(step=step, total_steps=total_steps, loss=loss, tokens=tokens, elapsed_s=elapsed_s)
        print(json.dumps({"progress": line}), file=sys.stderr, flush=True)

    try:
        params = json.loads(args.params)
        if not isinstance(params, dict):
            raise InvalidTrainingConfig("--params must be a JSON object")
        result = run_training(
            params, args.seed, [b for b in args.benchmarks.split(",") if b], args.out,
            base_checkpoint=args.base, progress=report if args.progress else None,
            cloud_file=args.cloud_file,
        )
    except (InvalidTrainingConfig, json.JSONDecodeError) as exc:
        return fail("invalid", exc, code=2)
    except TrainingOutOfMemory as exc:
        return fail("out_of_memory", exc, code=3)
    except TrainingError as exc:
        return fail("error", exc, code=1)
    print(json.dumps(result.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
