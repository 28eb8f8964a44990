"""The table of common GPUs (services/data/gpus.csv): dense bf16/fp16 tensor peak, memory, source."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib.resources import files

from services.core.errors import BadInput


@dataclass(frozen=True)
class Gpu:
    name: str
    aliases: tuple[str, ...]
    peak_flops: float  # dense bf16/fp16 tensor FLOP/s (not the 2x "with sparsity" figure)
    memory_bytes: float  # the vendor's GB, read as 1e9 bytes (the lower reading)
    source: str
    verified: bool


def load_gpus() -> list[Gpu]:
    text = files("services").joinpath("data/gpus.csv").read_text()
    return [
        Gpu(name=row["name"], aliases=tuple(a.strip().lower() for a in row["aliases"].split("|")),
            peak_flops=float(row["bf16_dense_tflops"]) * 1e12, memory_bytes=float(row["memory_gb"]) * 1e9,
            source=row["source"], verified=row["verified"].strip().lower() == "yes")
        for row in csv.DictReader(text.splitlines())
    ]


def find_gpu(name: str) -> Gpu:
    """The row whose name or alias matches `name` (case-insensitive); unknown -> BadInput listing all."""
    wanted = name.strip().lower()
    table = load_gpus()
    for gpu in table:
        if wanted == gpu.name.lower() or wanted in gpu.aliases:
            return gpu
    # torch reports e.g. "NVIDIA H200": accept a unique row whose alias is contained in it
    contained = [g for g in table if any(a and a in wanted for a in g.aliases if len(a) > 3)]
    if len(contained) == 1:
        return contained[0]
    known = ", ".join(g.name for g in table)
    raise BadInput(f"unknown GPU {name!r}; known GPUs: {known} (or --gpu auto)")
