"""The trainer on real tensors: it learns, saves what it learned, and refuses what it cannot do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from events.models.training import TRAINING_KNOBS
from tests.workers.jobs.conftest import ALL, TINY
from workers.data.sources import load_corpus
from workers.jobs.evaluate import evaluate
from workers.jobs.train import (
    CONFIG_FILE,
    InvalidTrainingConfig,
    StepInfo,
    TrainConfig,
    TrainingOutOfMemory,
    TrainResult,
    load_checkpoint,
    main,
    packed_batches,
    run_training,
)


def test_a_tiny_run_lowers_the_loss(base_run: tuple[TrainResult, list[StepInfo]]) -> None:
    result, _ = base_run
    assert result.config["steps"] == 40
    assert result.final_loss < result.initial_loss - 1.0
    assert set(result.scores) == set(ALL) and result.unavailable == {}
    assert result.device.startswith(("cpu", "cuda"))


def test_hooks_run_once_per_step_after_the_optimizer(base_run: tuple[TrainResult, list[StepInfo]]) -> None:
    _, seen = base_run
    assert [info.step for info in seen] == list(range(1, 41))
    assert all(info.total_steps == 40 and info.batch.shape == (8, 32) for info in seen)
    assert seen[-1].tokens == 40 * 8 * 32
    # the step's gradients are still there for a measurement hook to read
    assert any(p.grad is not None for p in seen[-1].model.parameters())


def test_checkpoint_reloads_to_the_same_scores(
    base_dir: Path, base_run: tuple[TrainResult, list[StepInfo]]
) -> None:
    model, tokenizer, config = load_checkpoint(base_dir)
    assert config == json.loads((base_dir / CONFIG_FILE).read_text())
    assert set(TRAINING_KNOBS) <= set(config)  # the saved config answers for every knob
    corpus = load_corpus(
        config["corpus"], n_people=config["n_people"], qa_fraction=config["qa_fraction"],
        data_format=config["format"], repetitions=config["repetitions"], seed=config["data_seed"],
    )
    scores, _ = evaluate(model, tokenizer, corpus, torch.device("cpu"), ["heldout_loss"])
    assert scores["heldout_loss"].value == pytest.approx(base_run[0].scores["heldout_loss"].value, rel=1e-4)


def test_costs_are_present_and_consistent(base_run: tuple[TrainResult, list[StepInfo]]) -> None:
    costs = base_run[0].costs
    n = costs["params_total"]
    assert costs["bytes_fp32"] == 4 * n and costs["bytes_bf16"] == 2 * n
    assert costs["bytes_int8"] == n and costs["bytes_int4"] == n / 2
    assert costs["flops_6nd"] == 6 * n * costs["tokens"]
    assert costs["tokens"] == 40 * 8 * 32
    assert 0 < costs["params_non_embedding"] < n and costs["params_trainable"] == n
    assert 0 < costs["code_bytes"] < costs["bytes_fp32"] * 100
    # the measured count includes attention, so it is of the order of the estimate
    assert 0.3 < costs["flops_measured"] / costs["flops_6nd"] < 3
    assert costs["wall_s"] >= costs["train_s"] > 0 and costs["peak_mem_bytes"] > 0


def test_same_seed_same_run_other_seed_other_run(tmp_path: Path) -> None:
    params = {**TINY, "train_tokens": 8 * 32 * 5}

    def losses(seed: int, out: str) -> list[float]:
        seen: list[float] = []
        run_training(params, seed, [], tmp_path / out, progress=lambda s, t, loss, tok, e: seen.append(loss))
        return seen

    first = losses(1, "a")
    assert len(first) == 5
    assert losses(1, "b") == first
    assert losses(2, "c") != first


def test_lora_trains_only_the_adapters(base_dir: Path, tmp_path: Path) -> None:
    base_weights = (base_dir / "model" / "model.safetensors").read_bytes()
    params = {**TINY, "train_tokens": 8 * 32 * 5, "lora_rank": 2, "base_run": "exp/base", "format": "qa"}
    result = run_training(params, 0, ["heldout_loss"], tmp_path / "lora", base_checkpoint=base_dir)
    costs = result.costs
    assert 0 < costs["params_trainable"] < costs["params_total"] / 10
    # rank 2 on c_attn (32 -> 96): A is 2x32, B is 96x2
    assert costs["params_trainable"] == TINY["n_layer"] * (2 * 32 + 96 * 2)
    assert (base_dir / "model" / "model.safetensors").read_bytes() == base_weights
    assert (tmp_path / "lora" / "model" / "adapter_config.json").is_file()
    model, _, config = load_checkpoint(tmp_path / "lora")
    assert config["lora_target_modules"] == ["c_attn"]
    assert config["base_checkpoint"] == str(base_dir.resolve())
    assert not any("lora" in name for name, _ in model.named_parameters())  # merged into the base


def test_a_run_on_a_base_inherits_its_architecture(base_dir: Path, tmp_path: Path) -> None:
    params = {**TINY, "n_layer": 6, "d_model": 256, "lora_rank": 2, "base_run": "e/r"}
    config = TrainConfig.from_params(params, seed=0, out_dir=tmp_path, base_checkpoint=base_dir)
    assert (config.n_layer, config.d_model) == (TINY["n_layer"], TINY["d_model"])


def test_llama_family_trains_and_adapts(tmp_path: Path) -> None:
    params = {**TINY, "model_family": "llama", "train_tokens": 8 * 32 * 20}
    base = run_training(params, 0, ["heldout_loss"], tmp_path / "llama")
    assert base.final_loss < base.initial_loss
    lora = run_training(
        {**params, "train_tokens": 8 * 32 * 4, "lora_rank": 2, "base_run": "e/llama"}, 0, [],
        tmp_path / "lora", base_checkpoint=Path(base.artifact),
    )
    assert lora.config["lora_target_modules"] == ["q_proj", "v_proj"]
    assert lora.costs["params_trainable"] < lora.costs["params_total"]


def test_a_local_file_corpus_reports_only_heldout_loss(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(f"Paragraph {i} says the number {i * 7} twice: {i * 7}." for i in range(60)))
    params = {**TINY, "corpus": f"file:{path}", "tokenizer": "char", "train_tokens": 8 * 32 * 4}
    result = run_training(params, 0, ALL, tmp_path / "out")
    assert set(result.scores) == {"heldout_loss"}
    assert set(result.unavailable) == {"qa_exact_match", "qa_exact_match_seen"}
    assert "no question-answer ground truth" in result.unavailable["qa_exact_match"]


@pytest.mark.parametrize(
    ("params", "base", "message"),
    [
        ({"lora_rank": 4}, None, "lora_rank needs base_run"),
        ({"lora_rank": 4, "base_run": "e/r"}, None, "pass base_checkpoint"),
        ({"lora_rank": 4, "base_run": "e/r"}, "missing", "is missing config.json"),
        ({"train_tokens": 1000, "batch_size": 64}, None, "less than one step"),
        ({"d_model": 30, "n_head": 4}, None, "divisible"),
        ({"layers": 3}, None, "Extra inputs"),
        ({"corpus": "file:/nonexistent/corpus.txt"}, None, "does not exist"),
        ({"vocab_size": 100}, None, "vocab_size >= 258"),
    ],
)
def test_bad_configs_raise_clear_value_errors(
    tmp_path: Path, params: dict[str, object], base: str | None, message: str
) -> None:
    base_checkpoint = tmp_path / base if base else None
    with pytest.raises(ValueError, match=message) as caught:
        run_training({**TINY, **params}, 0, [], tmp_path / "out", base_checkpoint=base_checkpoint)
    assert isinstance(caught.value, InvalidTrainingConfig)


def test_unknown_benchmarks_are_refused_before_training(tmp_path: Path) -> None:
    with pytest.raises(InvalidTrainingConfig, match="unknown benchmarks"):
        run_training(TINY, 0, ["mmlu"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_running_out_of_memory_is_reported_as_such(tmp_path: Path) -> None:
    def exhaust(info: StepInfo) -> None:
        raise MemoryError("simulated")

    with pytest.raises(TrainingOutOfMemory, match="lower batch_size"):
        run_training({**TINY, "train_tokens": 8 * 32 * 4}, 0, [], tmp_path / "out", hooks=[exhaust])


def test_command_line_prints_one_json_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = json.dumps({**TINY, "train_tokens": 8 * 32 * 4})
    code = main(["--params", params, "--seed", "0", "--benchmarks", "heldout_loss", "--out", str(tmp_path)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(lines) == 1
    result = json.loads(lines[0])
    assert result["artifact"] == str(tmp_path.resolve()) and "heldout_loss" in result["scores"]
    assert json.loads((tmp_path / "result.json").read_text()) == result

    code = main(["--params", '{"lora_rank": 2}', "--out", str(tmp_path / "bad")])
    failure = json.loads(capsys.readouterr().out.strip())
    assert code == 2 and failure["error"]["kind"] == "invalid" and "base_run" in failure["error"]["reason"]


def test_each_epoch_visits_every_document_once_in_a_fresh_order_drawn_from_the_seed(tmp_path: Path) -> None:
    # Given four three-token documents and blocks of exactly one epoch (4 x (end-of-text + 3))
    params = {**TINY, "batch_size": 1, "context_length": 16}
    cfg = TrainConfig.from_params(params, seed=3, out_dir=tmp_path)
    documents = [[10] * 3, [11] * 3, [12] * 3, [13] * 3]

    def epochs(seed_cfg: TrainConfig, n: int) -> list[list[int]]:
        batches = packed_batches(documents, seed_cfg, eos_id=0)
        return [[int(t) for t in next(batches).flatten()[1::4]] for _ in range(n)]

    seen = epochs(cfg, 12)
    # Then every epoch holds each document once (a lens variant is never skipped or doubled)
    assert all(sorted(order) == [10, 11, 12, 13] for order in seen)
    # and the order changes across epochs, and is the same for the same seed
    assert len({tuple(order) for order in seen}) > 3
    assert epochs(cfg, 12) == seen
    assert epochs(TrainConfig.from_params(params, seed=4, out_dir=tmp_path), 12) != seen
