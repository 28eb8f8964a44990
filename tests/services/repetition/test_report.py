"""The repetition report's statistics: intervals over seeds, differences against noise, fits in K."""

from __future__ import annotations

import math

import pytest

from services.repetition.report import Report, agreement, fit_log_k, paper_rows, table


def scores(lenses_gain: float) -> dict[tuple[str, int], dict[int, float]]:
    """Accuracy-like scores: verbatim flat at 0.2, lenses rising with ln K; seed noise +-0.01."""
    out: dict[tuple[str, int], dict[int, float]] = {}
    for k in (1, 2, 4):
        out[("verbatim", k)] = {0: 0.19, 1: 0.21}
        out[("lenses", k)] = {0: 0.19 + lenses_gain * math.log(k), 1: 0.21 + lenses_gain * math.log(k)}
    return out


def test_a_gain_far_beyond_the_seed_noise_is_labelled_so_and_fitted_in_ln_k() -> None:
    t = table("pretrain_finetune", "qa_choice_accuracy", scores(0.1))
    assert t.direction == "higher"
    cell = next(c for c in t.cells if c.condition == "verbatim" and c.K == 1)
    assert cell.mean == pytest.approx(0.2) and cell.low is not None and cell.low < 0.2 < (cell.high or 0)
    at4 = next(d for d in t.differences if d.K == 4)
    assert at4.difference == pytest.approx(0.1 * math.log(4)) and at4.label == "better beyond noise"
    at1 = next(d for d in t.differences if d.K == 1)
    assert at1.label == "within noise"
    lenses = next(f for f in t.fits if f.condition == "lenses")
    assert lenses.slope == pytest.approx(0.1) and lenses.per_doubling == pytest.approx(0.1 * math.log(2))
    assert t.noise_sd == pytest.approx(math.sqrt(2) * 0.01)


def test_for_a_loss_lower_is_better() -> None:
    t = table("mixed", "qa_answer_loss", scores(-0.5))
    assert t.direction == "lower"
    assert next(d for d in t.differences if d.K == 4).label == "better beyond noise"


def test_one_seed_gives_no_noise_scale_and_says_so() -> None:
    single = {key: {0: by_seed[0]} for key, by_seed in scores(0.1).items()}
    t = table("mixed", "qa_exact_match", single)
    assert {d.label for d in t.differences} == {"noise unknown"}
    assert all(c.low is None for c in t.cells)


def test_a_fit_needs_two_values_of_k() -> None:
    assert fit_log_k("verbatim", [(2, 0.1), (2, 0.2)]) is None


def test_the_papers_figures_are_cited_rows_with_their_place_in_the_paper() -> None:
    rows = paper_rows()
    single = next(r for r in rows if r.protocol == "pretrain_finetune" and r.paper_condition == "bioS single")
    best = next(r for r in rows
                if r.paper_condition == "bioS multi5+permute" and r.protocol == "pretrain_finetune")
    assert (single.value_percent, best.value_percent, best.K) == (9.7, 96.6, 5)
    assert all(r.source for r in rows) and {r.protocol for r in rows} == {"pretrain_finetune", "mixed"}


def report_of(lenses_gain: float, seeds: int = 2) -> Report:
    by_seed = {key: dict(list(values.items())[:seeds]) for key, values in scores(lenses_gain).items()}
    t = table("pretrain_finetune", "qa_exact_match", by_seed)
    return Report(experiment="e", runs=12, budget="exposures", conditions=["verbatim", "lenses"],
                  ks=[1, 2, 4], protocols=["pretrain_finetune"], seeds=list(range(seeds)), cloud=None,
                  tables=[t], paper=paper_rows())


@pytest.mark.parametrize(("gain", "seeds", "verdict"), [
    (0.1, 2, "ours agrees with the paper's direction"),
    (-0.1, 2, "ours contradicts the paper"),
    (0.0, 2, "ours does not reproduce the paper's gap at this scale"),
    (0.1, 1, "ours cannot be compared: one seed per cell gives no noise scale"),
])
def test_the_report_says_plainly_whether_we_agree_with_the_paper(gain: float, seeds: int,
                                                                 verdict: str) -> None:
    # Given the paper's 9.7% (bioS single) against its best rewritten condition on held-out people
    lines = agreement(report_of(gain, seeds))
    # Then one sentence for the protocol the paper ran, naming both figures and our verdict
    assert len(lines) == 1
    assert lines[0].startswith("pretrain_finetune, qa_exact_match: lenses - verbatim at K=4")
    assert "the paper reports 9.7% (bioS single)" in lines[0] and lines[0].endswith(verdict + ".")


def test_benchmarks_the_paper_did_not_measure_get_no_sentence() -> None:
    report = report_of(0.1)
    report.tables = [table("pretrain_finetune", "probe_accuracy", scores(0.1))]
    assert agreement(report) == []
