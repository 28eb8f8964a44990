"""A4 pages of real English prose, and their measured token counts.

The rule: one A4 page of single-spaced 11-12 pt body text holds about 500 words (≈3,000
characters with spaces) — the common typesetting rule of thumb (e.g. university style guides
give 500 words single-spaced, 250 double-spaced). The text is prose that ships with this
machine: the GNU GPL v3 and the Python licence. Tokenising is worker code (the base model's
tokenizer), reached through the `page_tokens` executor.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core import plugins
from services.core.errors import Unavailable

WORDS_PER_PAGE = 500
PASSAGE_CHARS = 800  # as workers/data/qa_sources.py cuts text into passages


def prose_sources() -> list[Path]:
    """Real English prose available offline on this machine."""
    candidates = [Path("/usr/share/common-licenses/GPL-3"),
                  Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
                  / "LICENSE.txt"]
    return [p for p in candidates if p.is_file()]


def cut_pages(text: str, words_per_page: int = WORDS_PER_PAGE) -> list[str]:
    """Consecutive whole pages of `words_per_page` words (a trailing partial page is dropped)."""
    words = text.split()
    return [" ".join(words[i:i + words_per_page])
            for i in range(0, len(words) - words_per_page + 1, words_per_page)]


@dataclass(frozen=True)
class PageTokens:
    base: str
    pages: int
    mean: float
    stdev: float
    low: float
    high: float
    chars_mean: float
    sources: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "pages_measured": self.pages, "tokens_per_page_mean": round(self.mean, 1),
                "tokens_per_page_stdev": round(self.stdev, 1), "tokens_per_page_min": self.low,
                "tokens_per_page_max": self.high, "chars_per_page_mean": round(self.chars_mean, 1),
                "words_per_page": WORDS_PER_PAGE, "sources": self.sources}


def summarise(base: str, pages: list[str], counts: list[int], sources: list[str]) -> PageTokens:
    return PageTokens(base=base, pages=len(counts), mean=statistics.fmean(counts),
                      stdev=statistics.stdev(counts) if len(counts) > 1 else 0.0,
                      low=float(min(counts)), high=float(max(counts)),
                      chars_mean=statistics.fmean(len(p) for p in pages), sources=sources)


def measure_page_tokens(base: str) -> PageTokens:
    """Cut the offline prose into pages and tokenise each with the base's tokenizer (a worker)."""
    sources = prose_sources()
    pages = [p for src in sources for p in cut_pages(src.read_text(errors="replace"))]
    if not pages:
        raise Unavailable("no offline English prose found to measure tokens per page "
                          "(looked for /usr/share/common-licenses/GPL-3 and Python's LICENSE.txt)")
    counts = plugins.executor("page_tokens")(pages, base)
    return summarise(base, pages, list(counts), [str(s) for s in sources])
