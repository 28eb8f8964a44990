"""The trainer under the repetition experiment's knobs: conditions, protocols, equal exposures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.workers.jobs.conftest import TINY
from workers.data.biographies import generate
from workers.data.qa_sources import load_pairs
from workers.jobs.checkpoint import InvalidTrainingConfig
from workers.jobs.train import StepInfo, TrainConfig, read_rewrites, run_training


def cloud_file(tmp_path: Path, people: int, per_person: int) -> Path:
    world = generate(n_people=people, data_format="plain")
    path = tmp_path / "cloud.jsonl"
    path.write_text("".join(
        json.dumps({"subject": p.name, "text": f"{p.name}, version {i}: " + "; ".join(p.attributes.values())})
        + "\n" for p in world.people for i in range(per_person)))
    return path


def test_equal_exposures_give_k_times_the_steps_for_k_times_the_corpus(tmp_path: Path) -> None:
    # Given two verbatim runs, K=1 and K=4, each reading its corpus twice
    base = {**TINY, "condition": "verbatim", "epochs": 2.0}
    one = run_training({**base, "K": 1}, 0, [], tmp_path / "k1")
    four = run_training({**base, "K": 4}, 0, [], tmp_path / "k4")
    # Then the K=4 run takes about four times the optimizer steps (rounded up to whole blocks)
    assert 3.5 <= four.config["steps"] / one.config["steps"] <= 4.5
    assert four.costs["tokens"] >= 2 * 4 * 20 * 40  # at least 2 passes over 80 documents of ~40 tokens


def test_pretrain_finetune_reads_biographies_then_fine_tunes_on_the_qa_group(tmp_path: Path) -> None:
    # Given the Physics-3.1 protocol with a fine-tune of four steps
    steps: list[StepInfo] = []
    tokens_per_step = TINY["batch_size"] * TINY["context_length"]
    params = {**TINY, "condition": "verbatim", "K": 2, "protocol": "pretrain_finetune",
              "finetune_tokens": 4 * tokens_per_step}
    result = run_training(params, 0, ["qa_answer_loss_seen"], tmp_path / "out", hooks=[steps.append])
    # Then the corpus is biographies only, the fine-tune adds its steps, and costs count both
    assert result.config["data_format"] == "plain" and result.config["finetune_steps"] == 4
    assert len(steps) == result.config["steps"]  # hooks see the pretraining steps
    assert result.costs["steps"] == result.config["steps"] + 4
    assert "qa_answer_loss_seen" in result.scores


def test_pretrain_finetune_defaults_to_a_quarter_of_the_pretraining_tokens() -> None:
    cfg = TrainConfig.from_params({**TINY, "protocol": "pretrain_finetune", "train_tokens": 40_000},
                                  seed=0, out_dir=Path("/tmp/unused"))
    assert cfg.finetune_tokens == 10_000 and cfg.finetune_steps == 10_000 // (8 * 32)


def test_lenses_train_on_the_cloud_files_rewrites(tmp_path: Path) -> None:
    path = cloud_file(tmp_path, TINY["n_people"], 2)
    assert len(read_rewrites(path)) == TINY["n_people"]
    result = run_training({**TINY, "condition": "lenses", "K": 2, "cloud": "some-distillation"}, 0, [],
                          tmp_path / "out", cloud_file=path)
    assert result.config["cloud_file"] == str(path.resolve())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"condition": "lenses", "K": 2}, "needs cloud"),
        ({"condition": "verbatim"}, "condition and K go together"),
        ({"K": 3}, "condition and K go together"),
        ({"condition": "verbatim", "K": 2, "repetitions": 3}, "replace repetitions"),
        ({"finetune_tokens": 5000}, "needs protocol: pretrain_finetune"),
        ({"condition": "lenses", "K": 2, "cloud": "d"}, "needs its rewrites"),
        ({"condition": "verbatim", "K": 2, "corpus": "file:/x.txt"}, "biographies corpus or a 'pairs:PATH'"),
        ({"pairs_sha256": "a" * 64}, "names the pair set of a 'pairs:PATH' corpus"),
    ],
)
def test_incoherent_repetition_knobs_are_refused(
    tmp_path: Path, params: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidTrainingConfig, match=message):
        run_training({**TINY, **params}, 0, [], tmp_path / "out")


def test_a_cloud_without_enough_rewrites_for_k_is_refused(tmp_path: Path) -> None:
    path = cloud_file(tmp_path, TINY["n_people"], 1)
    with pytest.raises(InvalidTrainingConfig, match="needs 2 rewrites"):
        run_training({**TINY, "condition": "lenses", "K": 2, "cloud": "d"}, 0, [], tmp_path / "out",
                     cloud_file=path)


PAIR_BENCHMARKS = ["qa_exact_match", "qa_f1", "qa_answer_loss", "qa_choice_accuracy", "qa_exact_match_seen"]


def pairs_file(tmp_path: Path, n: int = 24) -> Path:
    path = tmp_path / "facts.jsonl"
    path.write_text("".join(json.dumps({"id": f"f{i:02d}", "question": f"What is the code of item {i}?",
                                        "answer": f"code {i * 7 % 23}"}) + "\n" for i in range(n)))
    return path


def test_lenses_on_your_own_pairs_pretrain_fine_tune_and_ask_the_held_out_pairs(tmp_path: Path) -> None:
    # Given a JSONL of pairs, two rewrites of each in a cloud file, and the pair set's sha256
    path = pairs_file(tmp_path)
    pair_set, pairs = load_pairs(str(path))
    cloud = tmp_path / "cloud.jsonl"
    cloud.write_text("".join(json.dumps({"pair": p.id, "text": f"Item code: {p.answer} ({k})."}) + "\n"
                             for p in pairs for k in range(2)))
    tokens_per_step = TINY["batch_size"] * TINY["context_length"]
    params = {**TINY, "corpus": f"pairs:{path}", "pairs_sha256": pair_set.sha256, "condition": "lenses",
              "K": 2, "cloud": "d", "protocol": "pretrain_finetune", "finetune_tokens": 4 * tokens_per_step,
              "train_tokens": 10 * tokens_per_step}
    # When a student trains on them
    result = run_training(params, 0, [*PAIR_BENCHMARKS, "probe_accuracy"], tmp_path / "out", cloud_file=cloud)
    # Then every pairs benchmark is scored on the 12 held-out pairs (the seen ones on the QA group)
    assert set(result.scores) == set(PAIR_BENCHMARKS)
    assert all(result.scores[b].n == 12 for b in PAIR_BENCHMARKS)
    assert "biographies world" in result.unavailable["probe_accuracy"]
    assert result.config["pairs_sha256"] == pair_set.sha256 and result.config["finetune_steps"] == 4
    # And a file whose pairs changed since is refused
    path.write_text(path.read_text().replace("code 7", "code 8"))
    with pytest.raises(InvalidTrainingConfig, match="its pairs changed"):
        run_training(params, 0, [], tmp_path / "again", cloud_file=cloud)
