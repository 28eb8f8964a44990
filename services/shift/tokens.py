# ruff: noqa: RUF001, RUF002  (the notation of the definitions)
"""One example's tokens shaded by saliency: ANSI colours for the terminal, an HTML page to keep.

Saliency = ‖∂ℓ_i/∂e_t‖ at the token's input embedding; the shade is linear in it, from the
example's smallest to its largest. The arrays come from the chunk's content-addressed blob,
checked against the sha256 the chunk's event carries.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

from events.store import EventStore
from events.store.blobs import BlobMissing, get_blob
from services.core.errors import BadInput, NotFound
from services.shift.figures import Measurement, list_measurements, read_measurement


@dataclass(frozen=True)
class ExampleTokens:
    measurement_id: str
    example_id: str
    tokens: list[dict[str, Any]]  # position, token, text, token_loss, saliency, grad_x_input
    blob: str

    def public(self) -> dict[str, Any]:
        return {"measurement_id": self.measurement_id, "example_id": self.example_id,
                "tokens_sha256": self.blob, "tokens": self.tokens}


def example_tokens(store: EventStore, example_id: str, measurement_id: str | None = None) -> ExampleTokens:
    """The token arrays of `example_id`, from the given measurement or the newest that has them."""
    if measurement_id:
        candidates = [read_measurement(store, measurement_id)]
    else:
        candidates = [m for m in reversed(list_measurements(store)) if m.tokens_blobs]
    found: Measurement | None = next((m for m in candidates if example_id in m.tokens_blobs), None)
    if found is None:
        where = f"measurement {measurement_id}" if measurement_id else "any measurement made with --tokens"
        raise NotFound(f"example {example_id!r} has no token figures in {where}: measure it with "
                       "`knobs shift measure --tokens`")
    blob = found.tokens_blobs[example_id]
    try:
        arrays = json.loads(get_blob(blob))
    except BlobMissing as exc:
        raise BadInput(str(exc)) from exc
    return ExampleTokens(found.request.measurement_id, example_id, arrays[example_id], blob)


def _shades(tokens: list[dict[str, Any]]) -> list[float]:
    values = [float(t["saliency"]) for t in tokens]
    low, high = min(values), max(values)
    return [(v - low) / (high - low) if high > low else 0.0 for v in values]


def render_terminal(example: ExampleTokens, colour: bool = True) -> str:
    """The text with each token's background from white (least salient) to red (most)."""
    pieces = []
    for token, shade in zip(example.tokens, _shades(example.tokens), strict=True):
        text = token["text"] if token["text"] is not None else f"<{token['token']}>"
        if colour:
            g = b = round(255 * (1 - shade))
            pieces.append(f"\x1b[48;2;255;{g};{b}m\x1b[38;2;0;0;0m{text}\x1b[0m")
        else:
            pieces.append(text)
    top = sorted(example.tokens, key=lambda t: t["saliency"], reverse=True)[:5]
    legend = ", ".join(f"{t['text']!r} {t['saliency']:.3g}" for t in top)
    return "".join(pieces) + f"\nmost salient: {legend}"


def measurement_tokens(measurement: Measurement, example_ids: list[str]) -> dict[str, ExampleTokens]:
    """The token arrays of those examples the measurement kept them for (each blob read once);
    an example without them, or whose blob is not in this KNOBS_HOME, is left out."""
    arrays: dict[str, dict[str, Any]] = {}
    found: dict[str, ExampleTokens] = {}
    for example_id in example_ids:
        blob = measurement.tokens_blobs.get(example_id)
        if blob is None:
            continue
        if blob not in arrays:
            try:
                arrays[blob] = json.loads(get_blob(blob))
            except BlobMissing:
                arrays[blob] = {}
        if example_id in arrays[blob]:
            found[example_id] = ExampleTokens(measurement.request.measurement_id, example_id,
                                              arrays[blob][example_id], blob)
    return found


def token_spans(example: ExampleTokens, cls: str = "t") -> str:
    """One <span> per token, its background shaded by saliency, its figures in its title and
    its saliency in `data-saliency`."""
    spans = []
    for token, shade in zip(example.tokens, _shades(example.tokens), strict=True):
        text = token["text"] if token["text"] is not None else f"<{token['token']}>"
        loss = "" if token["token_loss"] is None else f", loss {token['token_loss']:.4f}"
        ig = "" if token.get("integrated_gradients") is None else f", IG {token['integrated_gradients']:.4g}"
        title = (f"saliency {token['saliency']:.4g}, grad×input {token['grad_x_input']:.4g}, "
                 f"token_update {token.get('token_update', 0.0):.4g}{ig}{loss}")
        spans.append(f'<span class="{cls}" style="background: rgba(220, 38, 38, {shade:.3f})" '
                     f'data-saliency="{float(token["saliency"])!r}" '
                     f'title="{html.escape(title)}">{html.escape(text)}</span>')
    return "".join(spans)


def render_html(example: ExampleTokens) -> str:
    spans = [token_spans(example)]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>knobs shift: example {html.escape(example.example_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #111; }}
.text {{ font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.9; }}
.t {{ border-radius: 2px; }}
</style></head><body>
<h1>Example {html.escape(example.example_id)}</h1>
<p>Measurement <code>{html.escape(example.measurement_id)}</code>; token arrays
<code>sha256:{html.escape(example.blob)}</code>. Shade: saliency ‖∂ℓ/∂e<sub>t</sub>‖, from the
example's least (white) to its most salient token (red). Hover a token for its figures.</p>
<div class="text" id="tokens">{"".join(spans)}</div>
</body></html>
"""
