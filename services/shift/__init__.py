"""Capability 3: how much each example and token moves a model, and what volatility predicts.

`measure` asks for a measurement (the workers do it and log every chunk), `figures` reads a
measurement back from the log, `tokens` draws one example's tokens shaded by saliency, and
`verdict` turns a hypothesis test's table into correlations, intervals and a verdict.
"""

from pathlib import Path

DEMO_SPEC = Path(__file__).resolve().parents[1] / "data" / "demo-hypothesis.yaml"
"""The bundled hypothesis spec. Here, not in `hypothesis`, so that `knobs --help` shows it as
`knobs shift hypothesis`'s default without importing the tester."""
