"""Specs the experiment tests start from: the examples in examples/specs/ and a dict to vary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "specs"


def example(name: str) -> dict[str, Any]:
    """An example spec from examples/specs/, parsed, for tests to vary."""
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    return loaded


def tiny_ofat() -> dict[str, Any]:
    return {
        "name": "tiny-ofat",
        "executor": "train",
        "design": {"method": "ofat", "seed": 0},
        "base": {"n_layer": 2, "n_head": 2, "d_model": 64, "lr": 3.0e-3, "train_tokens": 200000,
                 "format": "plain"},
        "factors": {
            "n_layer": {"values": [1, 2, 4]},
            "lr": {"range": [1.0e-4, 1.0e-2], "scale": "log"},
            "format": {"values": ["plain", "qa", "mixed"]},
        },
        "seeds": [0, 1],
        "benchmarks": ["qa_exact_match", "heldout_loss"],
        "budget": {"max_runs": 40},
    }
