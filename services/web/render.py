"""Pages from Jinja2 templates (autoescaped), with the SVG charts and the caller's scope."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from services.core.errors import ServiceError
from services.core.version import code_version
from services.figures.model import Curves, Heatmap, Histogram, Scatter, Tornado
from services.web import svg

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

Figure = Tornado | Curves | Heatmap | Scatter | Histogram


def chart(fig: Figure) -> Markup:
    """The figure's SVG under a caption that names its data and links to its JSON."""
    drawn = {Tornado: svg.tornado, Curves: svg.curves, Heatmap: svg.heatmap, Scatter: svg.scatter,
             Histogram: svg.histogram}[type(fig)](fig)  # type: ignore[operator]
    p = fig.provenance
    note = getattr(fig, "note", "")
    return Markup(
        f'<figure class="figure"><figcaption><b>{Markup.escape(p.title)}</b> '
        f'<span class="data">{Markup.escape(p.caption())}</span> '
        f'<a class="json" href="{Markup.escape(p.json_url)}">JSON</a></figcaption>{drawn}'
        + (f'<p class="note">{Markup.escape(note)}</p>' if note else "") + "</figure>")


def event_url(position: int) -> str:
    """The one event at a log position, as the events API gives it (read scope, as every page)."""
    return f"/v1/events?after={max(position - 1, 0)}&limit=1"


ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)
ENV.globals["chart"] = chart
ENV.globals["event_url"] = event_url
ENV.filters["num"] = lambda v: "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    html = ENV.get_template(template).render(request=request, code_version=code_version(), **values)
    return HTMLResponse(html, status_code=status_code)


def error_page(request: Request, exc: ServiceError) -> HTMLResponse:
    return page(request, "error.html", status_code=exc.status_code, error=str(exc),
                kind=type(exc).__name__)
