"""The trainer benchmark runs end to end in its quick mode; no timing is asserted, only that it
prints both throughputs and their ratio, and that both trainers trained the same thing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import get_scheduler

from bench import trainer
from workers.jobs.train import TrainConfig, lr_at

# HF's cosine runs one step ahead of knobs' (the same warm-up), which moves the final loss by
# a few hundredths of a nat at most; a different model or different data would be off by far
# more, and a broken run would not have learnt at all.
FINAL_LOSS_TOL = 0.15


@pytest.mark.slow
def test_trainer_benchmark_quick_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given the quick mode, writing its figures as JSON
    out = tmp_path / "figures.json"

    # When the benchmark runs
    code = trainer.main(["--quick", "--json", str(out)])
    printed = capsys.readouterr().out

    # Then it succeeds and prints the table, the machine and its checks
    assert code == 0, printed
    for text in ("machine:", "torch ", "knobs tok/s", "HF tok/s", "knobs/HF", "final loss knobs",
                 "final loss HF", "checks: ok"):
        assert text in printed, text
    if not torch.cuda.is_available():
        assert "no GPU: skipped" in printed

    # And the JSON says the same: per configuration, both throughputs positive and the ratio
    # printed as it is stored
    figures = json.loads(out.read_text())
    assert figures["quick"] is True and figures["ok"] is True
    cases = figures["cpu"]
    assert [c["config"] for c in cases] == [c.name for c in trainer.cpu_cases(quick=True)]
    for case in cases:
        knobs, hf = case["knobs"], case["hf"]
        assert knobs["tokens_per_s"] > 0 and hf["tokens_per_s"] > 0
        assert case["knobs_over_hf"] == pytest.approx(knobs["tokens_per_s"] / hf["tokens_per_s"])
        assert f"{case['knobs_over_hf']:.2f}x" in printed
        assert knobs["timed_tokens"] == hf["timed_tokens"] > 0
        assert knobs["steps"] == hf["steps"] == case["params"]["train_tokens"] // (16 * 128)

        # And both trained the same thing: the same batches, the same first-step loss (same
        # weights, same data, no update yet), close final losses, both well below the start
        assert all(case["checks"].values()), case["checks"]
        assert knobs["initial_loss"] == pytest.approx(hf["initial_loss"], abs=1e-4)
        assert abs(knobs["final_loss"] - hf["final_loss"]) < FINAL_LOSS_TOL
        for side in (knobs, hf):
            assert side["final_loss"] < side["initial_loss"] - 0.3


@pytest.mark.parametrize("steps", [24, 97])
def test_hf_schedule_is_knobs_schedule_within_a_step(steps: int, tmp_path: Path) -> None:
    # Given knobs' resolved schedule for `steps` steps and the HF scheduler the benchmark asks for
    cfg = TrainConfig.from_params({"train_tokens": steps * 16 * 128}, seed=0, out_dir=tmp_path)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    scheduler = get_scheduler(
        trainer.HF_SCHEDULER, optimizer, num_warmup_steps=cfg.warmup_steps,
        num_training_steps=cfg.steps, scheduler_specific_kwargs={"min_lr": cfg.min_lr},
    )

    # When both are stepped through the run
    hf = []
    for _ in range(cfg.steps):
        hf.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    ours = [lr_at(step, cfg) for step in range(cfg.steps)]

    # Then the warm-up is the same, and the cosine is at most one step apart
    assert hf[: cfg.warmup_steps] == pytest.approx(ours[: cfg.warmup_steps])
    assert hf[cfg.warmup_steps:-1] == pytest.approx(ours[cfg.warmup_steps + 1:])
    assert max(abs(h - o) for h, o in zip(hf, ours, strict=True)) < 0.07 * cfg.lr
