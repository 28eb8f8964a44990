"""Per-example gradient norms (workers/jobs/shift.py) against one plain training step and a naive
per-example loop, on one batch: time, peak memory, and agreement with the loop.

    python -m bench.influence [--quick] [--json OUT]

- Workload: one batch of B = 32 sequences of 128 tokens (random ids, seed 0) for a GPT-2-style
  model of about 10M parameters built from a transformers config (8 layers, width 256,
  vocabulary 8192, tied embeddings), fp32 on the CPU; `--quick` is B = 4 of 32 tokens on a
  2-layer model (a smoke run).
- plain step: one forward and backward of the batch's mean loss and an SGD update, what a
  training step costs; the floor that per-example measurement is held against.
- knobs ghost: `measure(..., ShiftConfig(metrics="norms"))`, as `python -m workers.jobs.shift
  --metrics norms` runs it: ghost norms from one backward pass per chunk of 32
  (workers/jobs/ghost_norms.py), never a per-example gradient.
- knobs vmap: `measure()` with every figure, per-example gradients by torch.func
  `vmap(grad_and_value(...))` in memory-bounded chunks, plus each example's loss after its
  own step (one extra single-example forward each).
- naive loop: for each example, forward, backward, the norm of its gradient.
- Opacus: `GradSampleModule(model, loss_reduction="sum", strict=False)`, one forward and backward,
  the norm of each example's `grad_sample`s. Run every time; where it cannot follow the model
  (Opacus 1.6 on transformers' GPT-2: "No activations detected for Linear", tied head or not)
  the bench prints its error instead of figures.
- Each side runs in a fresh process (peak memory is that process's max RSS less the RSS after
  the model and batch are built), timed after a warm-up call, best of `--rounds`.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import machine, table

SIDES = ("plain", "ghost", "vmap", "loop", "opacus")
COMPARED = ("ghost", "vmap", "opacus")
FULL = {"batch": 32, "tokens": 128, "n_layer": 8, "d_model": 256, "vocab": 8192, "rounds": 3}
QUICK = {"batch": 4, "tokens": 32, "n_layer": 2, "d_model": 64, "vocab": 512, "rounds": 1}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _one_side(side: str, size: dict[str, int]) -> dict[str, Any]:
    """Run one side in this process and return its figures (called in a child process)."""
    import torch
    import torch.nn.functional as F
    from transformers import GPT2Config, GPT2LMHeadModel

    import workers.jobs  # noqa: F401  # OpenMP wait policy before torch works
    from workers.jobs.shift import Example, MeasuredModel, ShiftConfig, measure

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=size["n_layer"], n_head=4, n_embd=size["d_model"],
                                       vocab_size=size["vocab"], n_positions=size["tokens"]))
    model.eval()
    model.set_attn_implementation("eager")
    shape = (size["batch"], size["tokens"])
    ids = torch.randint(0, size["vocab"], shape, generator=torch.Generator().manual_seed(0))
    # The examples as text tokens: an identity "tokeniser" over the ids, joined by spaces.
    measured = MeasuredModel(model, lambda text, _first: [int(t) for t in text.split()],
                             size["tokens"], "transformers", lora=False)
    examples = [Example(str(i), "", " ".join(str(int(t)) for t in row), plain_text=True)
                for i, row in enumerate(ids)]
    params = sum(p.numel() for p in model.parameters())
    baseline = _rss_mib()

    def plain() -> list[float]:
        model.zero_grad()
        logits = model(ids).logits
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.0 * p.grad  # the update's cost without changing what the next round sees
        return []

    def ghost() -> list[float]:
        report = measure(measured, examples, config=ShiftConfig(metrics="norms"))
        assert report.settings["method"] == "ghost norms"
        return [e.grad_norm for e in report.examples]

    def vmap() -> list[float]:
        return [e.grad_norm for e in measure(measured, examples, config=ShiftConfig()).examples]

    def loop() -> list[float]:
        norms = []
        for row in ids:
            model.zero_grad()
            logits = model(row[None]).logits[0]
            F.cross_entropy(logits[:-1], row[1:]).backward()
            norms.append(math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in model.parameters())))
        return norms

    def opacus() -> list[float]:
        from opacus import GradSampleModule

        wrapped = GradSampleModule(model, batch_first=True, loss_reduction="sum", strict=False)
        try:
            logits = wrapped(ids).logits
            losses = F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
            losses.view(ids.shape[0], -1).mean(-1).sum().backward()
            squares = torch.zeros(ids.shape[0], dtype=torch.float64)
            for p in model.parameters():
                squares += p.grad_sample.double().flatten(1).pow(2).sum(1)  # type: ignore[union-attr]
            return squares.sqrt().tolist()
        finally:
            wrapped._close()
            model.zero_grad(set_to_none=True)

    run = {"plain": plain, "ghost": ghost, "vmap": vmap, "loop": loop, "opacus": opacus}[side]
    try:
        run()  # warm-up
    except Exception as exc:  # a library that cannot follow the model: report it, do not hide it
        return {"side": side, "error": f"{type(exc).__name__}: {exc}", "params": params}
    best = math.inf
    norms: list[float] = []
    for _ in range(size["rounds"]):
        started = time.perf_counter()
        norms = run()
        best = min(best, time.perf_counter() - started)
    return {"side": side, "seconds": best, "peak_mib": _rss_mib() - baseline, "norms": norms,
            "params": params}


def _in_child(side: str, size: dict[str, int]) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.influence", "--side", side, "--size", json.dumps(size)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def run(size: dict[str, int]) -> dict[str, Any]:
    sides = {side: _in_child(side, size) for side in SIDES}
    plain, loop = sides["plain"], sides["loop"]
    ran = [s for s in SIDES if "error" not in sides[s]]
    figures: dict[str, Any] = {
        "machine": machine(), "size": size, "params": plain["params"],
        "seconds": {s: sides[s]["seconds"] for s in ran},
        "peak_mib": {s: sides[s]["peak_mib"] for s in ran},
        "errors": {s: sides[s]["error"] for s in SIDES if s not in ran},
    }
    for side in (s for s in COMPARED if s in ran):
        ours = sides[side]
        figures[side] = {
            "over_plain": ours["seconds"] / plain["seconds"],
            "loop_over_ours": loop["seconds"] / ours["seconds"],
            "memory_over_plain": ours["peak_mib"] / max(plain["peak_mib"], 1e-9),
            "max_relative_error_vs_loop": max(abs(a - b) / b for a, b in zip(ours["norms"], loop["norms"],
                                                                             strict=True)),
        }
    return figures


def render(f: dict[str, Any]) -> str:
    m, s = f["machine"], f["size"]
    lines = [f"machine: {m['cpu']}; {m['cores']} cores; {m['ram_gib']} GiB RAM",
             f"one batch: B={s['batch']} x {s['tokens']} tokens, GPT-2 {s['n_layer']} layers x "
             f"{s['d_model']}, "
             f"{f['params'] / 1e6:.1f}M parameters, fp32 CPU, best of {s['rounds']}", ""]
    lines.append(table(["side", "seconds", "peak MiB"],
                       [[side, f"{f['seconds'][side]:.3f}", f"{f['peak_mib'][side]:.0f}"]
                        if side in f["seconds"] else [side, "failed", "-"] for side in SIDES]))
    for side, error in f["errors"].items():
        lines += ["", f"{side} could not run: {error[:300]}"]
    for side in (s for s in COMPARED if s in f):
        r = f[side]
        who = "Opacus" if side == "opacus" else f"knobs {side}"
        lines += ["", f"{who}: {r['over_plain']:.2f}x a plain step's time, "
                  f"{r['memory_over_plain']:.2f}x its memory; the naive loop takes "
                  f"{r['loop_over_ours']:.2f}x its time; max relative error of grad_norm vs the loop "
                  f"{r['max_relative_error_vs_loop']:.2e}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.influence", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a tiny model and batch (a smoke run)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the figures as JSON")
    p.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # one side, in a child process
    p.add_argument("--size", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.side:
        print(json.dumps(_one_side(args.side, json.loads(args.size))))
        return 0
    figures = run(QUICK if args.quick else FULL)
    print(render(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
