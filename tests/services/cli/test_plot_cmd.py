"""`knobs plot`: the published Table 3 of Vaswani et al. imported and ranked for real (SQLite log,
the session's Neo4j), then drawn by the command as a person runs it: files that open (PNG magic
bytes, SVG that parses with one bar per ranked parameter in rank order, a caption naming the
data), and clear refusals that exit 2 and leave nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from events.models.rankings import RankingDerived
from services.core.context import Context
from services.importing.results import import_results
from services.ranking.rank import rank

ROOT = Path(__file__).resolve().parents[3]
TABLE3 = ROOT / "services" / "data" / "vaswani2017_table3.csv"
SVG = "{http://www.w3.org/2000/svg}"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def knobs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli.main", *args], capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=300)


def ranked(benchmark: str = "bleu_dev") -> RankingDerived:
    with Context() as ctx:
        import_results(ctx, TABLE3, "vaswani2017")
        ctx.catch_up()
        return rank(ctx, "vaswani2017", benchmark).ranking


def svg_texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")]


@pytest.mark.slow
def test_plot_ranking_writes_a_tornado_with_one_bar_per_parameter(knobs_env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    # Given Table 3 imported and ranked on BLEU
    ranking = ranked()
    names = [p.name for p in sorted(ranking.parameters, key=lambda p: p.rank)]
    assert len(names) >= 5

    # When the tornado is drawn as PNG (by the full id) and as SVG (by the 8 characters notes show)
    png, svg = tmp_path / "tornado.png", tmp_path / "tornado.svg"
    done = knobs(knobs_env, "plot", "ranking", ranking.ranking_id, "--out", str(png))
    assert done.returncode == 0, done.stderr
    done = knobs(knobs_env, "plot", "ranking", ranking.ranking_id[:8], "--out", str(svg))
    assert done.returncode == 0, done.stderr

    # Then the PNG is a PNG, and the SVG parses with one bar per ranked parameter, in rank order
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    root = ET.parse(svg).getroot()
    assert root.tag == f"{SVG}svg"
    bars = [g.get("id") for g in root.iter(f"{SVG}g") if (g.get("id") or "").startswith("bar-")]
    assert bars == [f"bar-{i}" for i in range(1, len(names) + 1)]
    texts = svg_texts(root)
    labels = [t for t in texts if any(t == f"{i}. {n}" for i, n in enumerate(names, 1))]
    assert labels == [f"{i}. {n}" for i, n in reversed(list(enumerate(names, 1)))], "rank 1 drawn on top"
    # And the caption names its data: experiment, benchmark, ranking id, log position, code version
    caption = " ".join(texts)
    for fact in ("vaswani2017", "bleu_dev", ranking.ranking_id, f"log position {ranking.as_of}",
                 ranking.code_version):
        assert fact in caption, fact
    assert "Which knobs move bleu_dev" in texts
    assert f"wrote {svg}" in done.stdout and ranking.ranking_id in done.stdout
    # And nothing but the two files was left in the folder (no temporary files)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".png", ".svg", ".tmp")) == [
        "tornado.png", "tornado.svg"]


@pytest.mark.slow
def test_plot_knee_and_cost(knobs_env: dict[str, str], tmp_path: Path) -> None:
    ranking = ranked()
    knee = tmp_path / "knee.svg"
    done = knobs(knobs_env, "plot", "knee", ranking.ranking_id, "--param", "d_model", "--out", str(knee))
    assert done.returncode == 0, done.stderr
    texts = svg_texts(ET.parse(knee).getroot())
    assert "bleu_dev against d_model" in texts and "d_model (log scale)" in texts
    # the ticks are the values Table 3 tried
    assert {"256", "512", "1024"} <= set(texts)

    cost = tmp_path / "cost.png"
    done = knobs(knobs_env, "plot", "cost", ranking.ranking_id, "--out", str(cost))
    assert done.returncode == 0, done.stderr
    assert cost.read_bytes()[:8] == PNG_MAGIC
    assert "per extra parameters" in done.stdout  # Table 3's only cost column, chosen for lack of flops

    # the matrix: both benchmarks ranked, one row per parameter, one column per benchmark
    with Context() as ctx:
        rank(ctx, "vaswani2017", "ppl_dev")
    matrix = tmp_path / "matrix.svg"
    done = knobs(knobs_env, "plot", "matrix", "vaswani2017", "--out", str(matrix))
    assert done.returncode == 0, done.stderr
    texts = svg_texts(ET.parse(matrix).getroot())
    assert {"bleu_dev", "ppl_dev", "d_model", "n_layer"} <= set(texts)
    unknown = knobs(knobs_env, "plot", "matrix", "nobody", "--out", str(tmp_path / "m.png"))
    assert unknown.returncode == 2 and "no current ranking" in unknown.stderr


def test_plot_volatility_of_a_measurement(knobs_env: dict[str, str], tmp_path: Path) -> None:
    from events.settings import EventsSettings
    from events.store.factory import open_store
    from tests.graph.test_shift_projection import shift_log

    store = open_store(EventsSettings())
    try:
        shift_log(store)
    finally:
        store.close()
    hist, shift_map = tmp_path / "vol.svg", tmp_path / "map.png"
    done = knobs(knobs_env, "plot", "volatility", "m1", "--out", str(hist))
    assert done.returncode == 0, done.stderr
    assert ET.parse(hist).getroot().tag == f"{SVG}svg" and "m1" in done.stdout
    done = knobs(knobs_env, "plot", "volatility", "m1", "--map", "--out", str(shift_map))
    assert done.returncode == 0, done.stderr
    assert shift_map.read_bytes()[:8] == PNG_MAGIC
    unknown = knobs(knobs_env, "plot", "volatility", "no-such", "--out", str(tmp_path / "v.png"))
    assert unknown.returncode == 2, unknown.stderr


@pytest.mark.slow
def test_plot_refuses_bad_input_with_exit_2_and_writes_nothing(knobs_env: dict[str, str],
                                                                 tmp_path: Path) -> None:
    ranking = ranked()
    kept = tmp_path / "kept.png"
    kept.write_bytes(b"an earlier figure")

    def refused(*args: str) -> str:
        done = knobs(knobs_env, "plot", *args)
        assert done.returncode == 2, (args, done.returncode, done.stdout, done.stderr)
        return done.stderr

    # an unknown ranking: says so, and the earlier file is untouched
    err = refused("ranking", "no-such-ranking", "--out", str(kept))
    assert "no ranking 'no-such-ranking'" in err and "knobs rankings" in err
    assert kept.read_bytes() == b"an earlier figure"
    # an unknown parameter, and a parameter with no numbers: both list the numeric ones
    err = refused("knee", ranking.ranking_id, "--param", "nope", "--out", str(tmp_path / "k.png"))
    assert "no parameter 'nope'" in err and "d_model" in err and "n_layer" in err
    err = refused("knee", ranking.ranking_id, "--param", "positional_encoding", "--out",
                  str(tmp_path / "k.png"))
    assert "fewer than two numeric values" in err and "d_model" in err
    # an unsupported suffix names the two supported ones
    err = refused("ranking", ranking.ranking_id, "--out", str(tmp_path / "t.pdf"))
    assert ".pdf" in err and "png" in err and "svg" in err
    # a folder that does not exist, a folder given as the file, a cost the ranking did not record
    err = refused("ranking", ranking.ranking_id, "--out", str(tmp_path / "missing" / "t.png"))
    assert "does not exist" in err
    folder = tmp_path / "figs.svg"
    folder.mkdir()
    assert "is a folder" in refused("ranking", ranking.ranking_id, "--out", str(folder))
    err = refused("cost", ranking.ranking_id, "--kind", "flops", "--out", str(tmp_path / "c.png"))
    assert "choose one of: parameters" in err
    # a folder that cannot be written (read-only for this user; root is not refused by modes)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        assert "cannot write" in refused("ranking", ranking.ranking_id, "--out", str(locked / "t.png"))
    else:
        assert "cannot write" in refused("ranking", ranking.ranking_id, "--out", "/proc/knobs-plot-test.png")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file() and p.suffix != ".csv") == ["kept.png"]
