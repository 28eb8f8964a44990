"""Figures as data: what a chart shows (bars, cells, curves, points), computed once from the
recorded facts, drawn as SVG by the dashboard (services/web) and as PNG/SVG files by `knobs plot`."""
