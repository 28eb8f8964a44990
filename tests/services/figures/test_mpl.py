"""services/figures/mpl.py draws every figure type of the model, to PNG and to SVG, with its caption;
the same figure gives the same SVG bytes; a file is written whole or refused."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from services.core.errors import BadInput
from services.figures import mpl
from services.figures.model import (
    Bar,
    Curves,
    Heatmap,
    Histogram,
    Marker,
    Point,
    Provenance,
    Scatter,
    Series,
    Tornado,
    histogram,
)

SVG = "{http://www.w3.org/2000/svg}"
PROV = Provenance(title="A figure", about={"experiment": "e1", "benchmark": "b1", "ranking": "r-123"},
                  json_url="/v1/rankings/r-123")


def models() -> list[mpl.FigureModel]:
    edges, counts = histogram([0.1 * i for i in range(50)], bins=10)
    return [
        Tornado(PROV, 0.0, "b1 - baseline", [Bar("lr", -0.2, 0.3, 1, noise=0.05, verdict="distinguishable",
                                                 low_label="1e-4", high_label="1e-3"),
                                             Bar("depth", 0.0, 0.0, 2, verdict="indistinguishable")]),
        Curves(PROV, "lr", "b1", [Series("lr", [Point(1e-4, 0.5, 0.45, 0.55), Point(1e-3, 0.6),
                                                Point(1e-2, 0.62, 0.6, 0.64)])], log_x=True,
               markers=[Marker(1e-3, "knee 1e-3", 5e-4, 2e-3)], note="knee: found"),
        Scatter(PROV, "extra flops", "gain",
                [Point(1.0, 0.1, label="lr=1", group="lr"), Point(2.0, -0.1, label="depth=2", group="depth")],
                ["depth", "lr"]),
        Heatmap(PROV, ["lr", "depth"], ["b1", "b2"], [[0.9, -0.4], [None, 0.1]],
                [["+0.9", "-0.4"], ["-", "+0.1"]], marked=[(0, 1)], note="disagreements outlined"),
        Histogram(PROV, "volatility", edges, counts, note="50 examples"),
    ]


@pytest.mark.parametrize("model", models(), ids=lambda m: type(m).__name__)
def test_every_figure_type_draws_with_its_caption(model: mpl.FigureModel, tmp_path: Path) -> None:
    png = mpl.render(model, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = mpl.svg_text(model)
    assert svg == mpl.svg_text(model), "the same figure, the same bytes"
    texts = " ".join("".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG}text"))
    assert "A figure" in texts and "experiment e1, benchmark b1, ranking r-123" in texts
    assert "/v1/rankings/r-123" in texts


def test_empty_figures_say_so() -> None:
    empty = [Tornado(PROV, 0.0, "b1", []), Curves(PROV, "x", "y", []), Scatter(PROV, "x", "y", [], []),
             Heatmap(PROV, [], [], [], []), Histogram(PROV, "x", [0.0, 1.0], [0])]
    for model in empty:
        assert mpl.render(model, "svg").startswith(b"<?xml")


def test_write_is_whole_or_refused(tmp_path: Path) -> None:
    model = models()[0]
    target = tmp_path / "t.svg"
    assert mpl.write(model, target) == target.stat().st_size
    with pytest.raises(BadInput, match=r"\.png or \.svg"):
        mpl.write(model, tmp_path / "t.jpg")
    with pytest.raises(BadInput, match="does not exist"):
        mpl.write(model, tmp_path / "no" / "t.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.svg"]
