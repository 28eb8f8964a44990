"""lm-evaluation-harness results into the log: both file layouts, sizes as knobs, sources, all or nothing.

The fixtures follow the harness's real output: 0.4.x `results_<date>.json` files under a folder
per model (lm_eval/loggers/evaluation_tracker.py), and the older layout of the Pythia suite's
released evaluations (EleutherAI/pythia evals/pythia-v1/<size>/zero-shot/<size>_step<N>.json).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from events.models import BenchmarkScored, RunRecorded, SourceCited
from services.core.context import Context
from services.core.errors import BadInput
from services.importing.adapters import parse_assignments
from services.importing.lm_eval import import_lm_eval, parse_model_size, plan_lm_eval

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).parent / "fixtures"
SUITE = FIXTURES / "pythia"  # pythia-160m and pythia-410m, lm_eval 0.4.2
OLD = FIXTURES / "pythia-v1" / "1.4b_step143000.json"  # metric keys without ",none"


def runs_of(plan_events: Sequence[object]) -> dict[str, RunRecorded]:
    return {e.run_id: e for e in plan_events if isinstance(e, RunRecorded)}


def test_a_suite_folder_becomes_one_run_per_size_differing_in_model_size_alone() -> None:
    plan = plan_lm_eval([SUITE], "pythia")
    events = [e.event for e in plan.events]
    runs = runs_of(events)
    assert sorted(runs) == ["EleutherAI__pythia-160m@step143000", "EleutherAI__pythia-410m@step143000"]
    small, large = runs["EleutherAI__pythia-160m@step143000"], runs["EleutherAI__pythia-410m@step143000"]
    assert small.params == {"model": "EleutherAI/pythia-{size}", "model_size": 160_000_000, "step": 143000,
                            "dtype": "float16", "num_fewshot": 0}
    # the only knob that differs is the size, so a one-at-a-time analysis can use both runs
    assert {k for k in small.params if small.params[k] != large.params[k]} == {"model_size"}
    # the exact parameter count the harness measured is the cost, with the weight bytes
    assert small.costs["params_total"] == 162_322_944
    assert small.costs["bytes_bf16"] == 2 * 162_322_944
    assert small.origin == "import" and small.agent == "knobs-import-lm-eval"


def test_scores_are_task_slash_metric_with_stderr_and_effective_n() -> None:
    plan = plan_lm_eval([SUITE / "EleutherAI__pythia-410m"], "pythia")
    scores = {e.event.benchmark: e.event for e in plan.events if isinstance(e.event, BenchmarkScored)}
    assert set(scores) == {
        "arc_easy/acc", "arc_easy/acc_norm", "lambada_openai/acc", "lambada_openai/perplexity",
        "piqa/acc", "piqa/acc_norm", "wikitext/word_perplexity", "wikitext/byte_perplexity",
        "wikitext/bits_per_byte",
    }
    lambada = scores["lambada_openai/acc"]
    assert lambada.value == pytest.approx(0.5158160294973802)
    assert lambada.stderr == pytest.approx(0.006962491751098212)
    assert lambada.n == 5153
    # the harness writes "N/A" where it has no standard error
    assert scores["wikitext/word_perplexity"].stderr is None
    assert scores["wikitext/word_perplexity"].n == 62
    assert plan.score_count == 9


def test_the_older_layout_without_filters_reads_the_same_way() -> None:
    plan = plan_lm_eval([OLD], "pythia")
    (run,) = runs_of([e.event for e in plan.events]).values()
    assert run.run_id == "EleutherAI__pythia-1.4b@step143000"
    assert run.params == {"model": "EleutherAI/pythia-{size}", "model_size": 1_400_000_000, "step": 143000,
                          "num_fewshot": 0}
    # no measured count in old files: the nominal size stands in
    assert run.costs["params_total"] == 1.4e9
    scores = {e.event.benchmark: e.event for e in plan.events if isinstance(e.event, BenchmarkScored)}
    assert scores["winogrande/acc"].value == pytest.approx(0.5730071033938438)
    assert scores["winogrande/acc"].stderr == pytest.approx(0.013901878072574935)
    assert scores["winogrande/acc"].n is None
    assert "lambada_openai/ppl" in scores  # the harness's old name, kept as written


def test_each_file_is_cited_with_its_provenance_and_its_hash() -> None:
    plan = plan_lm_eval([SUITE, OLD], "pythia")
    cited = [e.event for e in plan.events if isinstance(e.event, SourceCited)]
    assert len(cited) == 3
    new = next(c for c in cited if "pythia-160m" in c.citation)
    assert new.citation.startswith("lm-evaluation-harness results results_2024-06-20T10-15-32.452123.json (")
    for part in ("model EleutherAI/pythia-160m at step143000", "lm_eval 0.4.2", "git 8138fd52",
                 "2024-06-20 10:15 UTC"):
        assert part in new.citation
    runs = runs_of([e.event for e in plan.events])
    assert runs["EleutherAI__pythia-160m@step143000"].source_id == new.source_id
    assert new.source_id.startswith("src-lmeval-")


@pytest.mark.parametrize(
    ("name", "size", "family"),
    [
        ("EleutherAI/pythia-160m", 160_000_000, "EleutherAI/pythia-{size}"),
        ("EleutherAI/pythia-1.4b-deduped", 1_400_000_000, "EleutherAI/pythia-{size}-deduped"),
        ("EleutherAI/pythia-70M", 70_000_000, "EleutherAI/pythia-{size}"),
        ("pythia-6.9b", 6_900_000_000, "pythia-{size}"),
        ("EleutherAI/pythia-v1.1-160m", 160_000_000, "EleutherAI/pythia-v1.1-{size}"),
        ("meta-llama/Llama-2-70b-hf", 70_000_000_000, "meta-llama/Llama-2-{size}-hf"),
        ("Qwen/Qwen2.5-0.5B-Instruct", 500_000_000, "Qwen/Qwen2.5-{size}-Instruct"),
        ("facebook/opt-125m", 125_000_000, "facebook/opt-{size}"),
    ],
)
def test_model_size_from_the_name(name: str, size: int, family: str) -> None:
    parsed = parse_model_size(name)
    assert parsed is not None and parsed.value == size and parsed.family == family


@pytest.mark.parametrize("name", ["gpt2", "bert-base-uncased", "/models/my-checkpoint", "t5-base"])
def test_no_size_when_the_name_states_none(name: str) -> None:
    assert parse_model_size(name) is None


def test_param_overrides_apply_to_every_run() -> None:
    overrides = parse_assignments(["dataset=pile", "num_fewshot=5", "model_size=1.6e8"])
    plan = plan_lm_eval([SUITE / "EleutherAI__pythia-160m"], "pythia", overrides)
    (run,) = runs_of([e.event for e in plan.events]).values()
    assert run.params["dataset"] == "pile"
    assert run.params["num_fewshot"] == 5
    assert run.params["model_size"] == 1.6e8
    with pytest.raises(BadInput, match="must be KEY=VALUE"):
        parse_assignments(["no-equals-sign"])


def test_import_then_reimport_stores_nothing_new(ctx: Context) -> None:
    # Given the suite and the old file imported once
    first = import_lm_eval(ctx, [SUITE, OLD], "pythia")
    assert (first.runs, first.scores) == (3, 25)
    assert first.new_events == first.events == 3 + 3 + 25
    assert (first.first_position, first.last_position) == (1, 31)
    # When the same files are imported again
    again = import_lm_eval(ctx, [OLD, SUITE], "pythia")
    # Then nothing new is stored, and the sources are in the log with their citations
    assert again.new_events == 0 and again.events == 31
    cited = [e.decode() for e in ctx.store().read_all(types=["SourceCited"])]
    assert len(cited) == 3
    assert all(isinstance(c, SourceCited) and c.citation.startswith("lm-evaluation-harness results")
               for c in cited)


def test_one_bad_file_among_good_ones_imports_nothing(ctx: Context, tmp_path: Path) -> None:
    folder = tmp_path / "evals"
    shutil.copytree(SUITE, folder)
    broken = folder / "EleutherAI__pythia-1b" / "results_2024-06-20T12-00-00.000000.json"
    broken.parent.mkdir()
    broken.write_text('{"results": {"piqa": {"acc,none": 0.70,}}}')
    with pytest.raises(BadInput) as err:
        import_lm_eval(ctx, [folder], "pythia")
    message = str(err.value)
    assert "nothing was imported" in message
    assert f"{broken}: line 1: not valid JSON" in message
    assert ctx.store().read_all() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"results": {}}', "no `results` object with tasks"),
        ('{"samples": {"piqa": []}}', "no `results` object with tasks"),
        ("[1, 2]", "must be a JSON object"),
        ('{"results": {"piqa": {"alias": "piqa"}}}', "no numeric metric"),
        ('{"results": {"piqa": [0.7]}}', r"results.piqa must be an object"),
    ],
)
def test_files_that_are_not_results_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "results_x.json"
    path.write_text(text)
    with pytest.raises(BadInput, match=expected):
        plan_lm_eval([path], "e")


def test_missing_paths_empty_folders_and_duplicate_runs(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file or folder"):
        plan_lm_eval([tmp_path / "nope.json"], "e")
    with pytest.raises(BadInput, match=r"no results\*\.json file under this folder"):
        plan_lm_eval([tmp_path], "e")
    with pytest.raises(BadInput, match="--experiment must not be empty"):
        plan_lm_eval([OLD], " ")
    copy = tmp_path / "results_copy.json"
    copy.write_text(OLD.read_text().replace("0.5730071033938438", "0.58"))
    with pytest.raises(BadInput, match=r"describes run 'EleutherAI__pythia-1\.4b@step143000'"):
        plan_lm_eval([OLD, copy], "e")


def test_a_file_without_a_size_in_its_model_name_says_so(tmp_path: Path) -> None:
    data = json.loads(OLD.read_text())
    data["config"]["model_args"] = "pretrained=gpt2"
    path = tmp_path / "results_gpt2.json"
    path.write_text(json.dumps(data))
    plan = plan_lm_eval([path], "e")
    (run,) = runs_of([e.event for e in plan.events]).values()
    assert run.run_id == "gpt2" and run.params == {"model": "gpt2", "num_fewshot": 0}
    assert run.costs == {}
    assert any("no size in the model name 'gpt2'" in n for n in plan.notes)


@pytest.mark.slow
def test_cli_imports_a_suite_and_refuses_bad_input(knobs_env: dict[str, str], tmp_path: Path) -> None:
    def knobs(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.cli.main", *args], capture_output=True,
                              text=True, env=knobs_env, cwd=ROOT, timeout=300)

    first = knobs("import", "lm-eval", str(SUITE), str(OLD), "--experiment", "pythia", "--json")
    assert first.returncode == 0, first.stderr
    outcome = json.loads(first.stdout)
    assert outcome["origin"] == "lm-eval" and outcome["runs"] == 3 and outcome["new_events"] == 31
    assert "graph was not updated" not in first.stderr

    again = knobs("import", "lm-eval", str(SUITE), str(OLD), "--experiment", "pythia")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "pythia: 3 runs, 25 scores; 0 new events, 31 already stored"

    bad = tmp_path / "results_bad.json"
    bad.write_text("{}")
    refused = knobs("import", "lm-eval", str(SUITE), str(bad), "--experiment", "pythia")
    assert refused.returncode == 2
    assert "nothing was imported" in refused.stderr and "no `results` object" in refused.stderr
