"""The page estimate over a log of measured runs: shapes, calibration, bad input, tokens/page."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.errors import BadInput
from services.estimate.estimate import Request, estimate, parse_pages
from services.estimate.pages import PageTokens, cut_pages, prose_sources, summarise
from tests.services.estimate.runs import completed, store_with
from workers.embedded import page_tokens


@pytest.fixture(scope="module")
def measured_pages() -> PageTokens:
    sources = prose_sources()
    pages = [p for src in sources for p in cut_pages(src.read_text(errors="replace"))]
    return summarise("smollm2-135m", pages, page_tokens(pages, "smollm2-135m"), [str(s) for s in sources])


def test_tokens_per_a4_page_are_measured_on_real_prose(measured_pages: PageTokens) -> None:
    print(f"tokens/page {measured_pages.mean:.1f} ± {measured_pages.stdev:.1f} "
          f"({measured_pages.low:g}-{measured_pages.high:g}) over {measured_pages.pages} pages, "
          f"{measured_pages.chars_mean:.0f} chars/page")
    assert measured_pages.pages >= 5
    # 500 English words are ~650 BPE tokens (≈1.3 tokens/word); licences have URLs and numbers
    assert 550 <= measured_pages.mean <= 850
    assert 2500 <= measured_pages.chars_mean <= 3600


def test_pages_are_500_whole_words() -> None:
    text = " ".join(f"w{i}" for i in range(1250))
    pages = cut_pages(text)
    assert len(pages) == 2 and all(len(p.split()) == 500 for p in pages)


def test_estimate_json_has_one_row_per_page_count_and_every_input(
    tmp_path: Path, measured_pages: PageTokens
) -> None:
    store = store_with(tmp_path / "e.sqlite3",
                       completed("a", params=1e5, tokens=1e5, train_s=10.0),
                       completed("b", params=1e5, tokens=1e5, train_s=20.0))
    result = estimate(store, Request(pages=[1, 10, 100, 1000]), measured_pages)
    assert set(result) == {"estimates", "inputs"}
    rows = result["estimates"]
    assert [r["pages"] for r in rows] == [1, 10, 100, 1000]
    for row in rows:
        assert {"pages", "tokens", "generate_s", "train_s", "total_s", "low_s", "high_s"} <= set(row)
        assert row["low_s"] <= row["total_s"] <= row["high_s"]
        assert row["total_s"] == pytest.approx(row["generate_s"] + row["train_s"])
    assert rows[3]["train_s"] == pytest.approx(1000 * rows[0]["train_s"], rel=1e-3)
    # CPU calibration: median of 6e10/10 and 6e10/20 FLOP/s, and the LoRA base costs 4·N per token
    inputs = result["inputs"]
    assert inputs["training_flops_per_s"]["value"] == pytest.approx(4.5e9)
    assert inputs["training_flops_per_s"]["source"].startswith("measured: 2 CPU runs")
    assert inputs["flops_per_token"] == 4 * inputs["params"]
    assert inputs["generation_tokens_per_s"]["source"].startswith("assumed")
    expected = rows[0]["train_tokens"] * inputs["flops_per_token"] / 4.5e9
    assert rows[0]["train_s"] == pytest.approx(expected, rel=1e-4)  # train_tokens is rounded


def test_a_gpu_uses_its_peak_and_the_measured_efficiency_of_gpu_runs(
    tmp_path: Path, measured_pages: PageTokens
) -> None:
    # one H200 run that achieved 98.9 TFLOP/s (6·N·D over train_s): 10% of the H200's peak
    store = store_with(tmp_path / "g.sqlite3",
                       completed("g", params=1e8, tokens=9.89e5, train_s=6.0, device="cuda (NVIDIA H200)"))
    result = estimate(store, Request(pages=[1], base="scratch-135m", gpu="H100 SXM"), measured_pages)
    flops = result["inputs"]["training_flops_per_s"]
    assert flops["value"] == pytest.approx(0.1 * 989e12)
    assert "measured: 1 GPU runs" in flops["source"]


def test_without_gpu_runs_the_default_efficiency_range_is_shown_as_assumed(
    tmp_path: Path, measured_pages: PageTokens
) -> None:
    store = store_with(tmp_path / "n.sqlite3")
    result = estimate(store, Request(pages=[1], gpu="A100 80GB"), measured_pages)
    flops = result["inputs"]["training_flops_per_s"]
    assert flops["low"] == pytest.approx(0.25 * 312e12) and flops["high"] == pytest.approx(0.5 * 312e12)
    assert "assumed" in flops["source"]


def test_without_cpu_runs_the_cpu_estimate_says_what_to_do(
    tmp_path: Path, measured_pages: PageTokens
) -> None:
    with pytest.raises(BadInput, match="no CPU runs in the log"):
        estimate(store_with(tmp_path / "x.sqlite3"), Request(pages=[1]), measured_pages)


@pytest.mark.parametrize("text", ["0,10", "1,-2", "ten", "1.5", ""])
def test_pages_must_be_positive_integers(text: str) -> None:
    with pytest.raises(BadInput, match="positive integers"):
        parse_pages(text)


def test_bad_request_names_every_problem() -> None:
    with pytest.raises(BadInput) as err:
        Request(pages=[1], lenses=0, efficiency=2.0, base="gpt-5").validate()
    assert "lenses" in str(err.value) and "efficiency" in str(err.value) and "gpt-5" in str(err.value)
