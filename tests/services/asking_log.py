"""A log shaped like what `knobs demo` leaves behind, for the "Asking the graph" tests.

Experiment demo-ofat (runs base-s0, lr=0.001-s0, d_model=128-s0 scored on heldout_loss and
qa_answer_loss_seen) with one ranking per benchmark, lr flagged as under-used on heldout_loss;
experiment vaswani2017-table3 (runs base, C-layers-2 on bleu_dev) with one ranking. The
rankings are appended directly, with noise verdicts, knees, costs and flags filled in, so the
named queries have every column to return whatever the ranking code does meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.models import BenchmarkScored, RunRecorded
from events.models.base import Event
from events.models.rankings import (
    CostEfficiency,
    Knee,
    LeverageFlag,
    NoiseVerdict,
    ParameterRanking,
    RankingDerived,
    UsedEvent,
    ValueEffect,
)
from events.store.port import NewEvent
from services.core.context import Context

DEMO = "demo-ofat"
VASWANI = "vaswani2017-table3"
HELDOUT, QA, BLEU = "heldout_loss", "qa_answer_loss_seen", "bleu_dev"
HELDOUT_RANKING, QA_RANKING, BLEU_RANKING = "rk-heldout", "rk-qa", "rk-bleu"


@dataclass(frozen=True)
class Knob:
    name: str
    base: float
    tried: float
    effect: float


def _parameter(rank: int, knob: Knob, run: str, flagged: bool) -> ParameterRanking:
    lo, hi = min(0.0, knob.effect), max(0.0, knob.effect)
    return ParameterRanking(
        name=knob.name, rank=rank, influence_range=(lo, hi), statistic=hi - lo,
        values=[ValueEffect(value=knob.base, mean=2.0, effect=0.0, n=1, runs=["base-s0"], is_baseline=True,
                            cost={"flops_6nd": 1e12}),
                ValueEffect(value=knob.tried, mean=2.0 + knob.effect, effect=knob.effect, n=1, runs=[run],
                            cost={"flops_6nd": 2e12})],
        noise=NoiseVerdict(label="distinguishable" if rank == 1 else "indistinguishable",
                           effect=hi - lo, noise=0.05, basis="seed spread"),
        knee=Knee(status="not_reached", detail="gain still above the threshold at the edge"),
        per_cost=[CostEfficiency(kind="flops", source="flops_6nd", value=knob.tried, gain=abs(knob.effect),
                                 extra_cost=1e12, per_unit=abs(knob.effect) / 1e12)],
        flags=[LeverageFlag(kind="best_at_edge", reason=f"best value {knob.tried} is the edge of the "
                            "explored range")] if flagged else [],
    )


def _ranking(ranking_id: str, experiment: str, benchmark: str, knobs: list[tuple[Knob, str, bool]],
             used: list[UsedEvent], as_of: int) -> RankingDerived:
    return RankingDerived(
        ranking_id=ranking_id, experiment=experiment, benchmark=benchmark, method="ofat",
        direction="higher" if benchmark == BLEU else "lower", bootstrap_seed=0, settings={"ci_level": 0.95},
        baseline={k.name: k.base for k, _, _ in knobs}, baseline_runs=["base-s0"], baseline_mean=2.0,
        code_version="test", as_of=as_of, used_events=used,
        parameters=[_parameter(rank, knob, run, flagged)
                    for rank, (knob, run, flagged) in enumerate(knobs, start=1)],
    )


def build(ctx: Context) -> None:
    """Append the log and project it."""
    store = ctx.store()
    runs = {"base-s0": {"lr": 0.003, "d_model": 64}, "lr=0.001-s0": {"lr": 0.001, "d_model": 64},
            "d_model=128-s0": {"lr": 0.003, "d_model": 128}}
    loss = {"base-s0": 2.0, "lr=0.001-s0": 2.4, "d_model=128-s0": 1.9}
    events: list[Event] = []
    for run, params in runs.items():
        events.append(RunRecorded(experiment=DEMO, run_id=run, params=params, seed=0, origin="train",
                                  costs={"flops_6nd": 1e12}))
        events += [BenchmarkScored(experiment=DEMO, run_id=run, benchmark=b, value=loss[run])
                   for b in (HELDOUT, QA)]
    events += [RunRecorded(experiment=VASWANI, run_id="base", params={"n_layer": 6}),
               BenchmarkScored(experiment=VASWANI, run_id="base", benchmark=BLEU, value=25.8),
               RunRecorded(experiment=VASWANI, run_id="C-layers-2", params={"n_layer": 2}),
               BenchmarkScored(experiment=VASWANI, run_id="C-layers-2", benchmark=BLEU, value=23.7)]
    appended = store.append([NewEvent(event=e) for e in events])
    used = [UsedEvent(position=a.position, event_id=a.event_id) for a in appended]
    demo_used, vaswani_used = used[:9], used[9:]
    lr, d_model = Knob("lr", 0.003, 0.001, 0.4), Knob("d_model", 64, 128, -0.1)
    head = store.head()
    rankings = [
        _ranking(HELDOUT_RANKING, DEMO, HELDOUT,
                 [(lr, "lr=0.001-s0", True), (d_model, "d_model=128-s0", False)], demo_used, head),
        _ranking(QA_RANKING, DEMO, QA, [(d_model, "d_model=128-s0", False), (lr, "lr=0.001-s0", False)],
                 demo_used, head),
        _ranking(BLEU_RANKING, VASWANI, BLEU, [(Knob("n_layer", 6, 2, -2.1), "C-layers-2", False)],
                 vaswani_used, head),
    ]
    store.append([NewEvent(event=r) for r in rankings])
    ctx.catch_up()
