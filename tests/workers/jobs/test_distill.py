"""The OpenAI-compatible client's own logic: call identity, the response cache, backoff."""

from __future__ import annotations

import random
from pathlib import Path

from events.models.distillation import Lens, QAPair, Sampling
from workers.jobs.distill import Answer, ClientSettings, ResponseCache, backoff, call_for, render_messages

LENS = Lens(name="child", family="child", description="d", system="You are kind.",
            template="Explain to a child: {question} {answer} ({context})")
PAIR = QAPair(id="p1", question="Where was Ada born?", answer="London", context="a {brace}")


def test_messages_fill_the_template_without_reading_braces_in_the_pair() -> None:
    messages = render_messages(LENS, PAIR)
    assert messages[0] == {"role": "system", "content": "You are kind."}
    assert messages[1]["content"] == "Explain to a child: Where was Ada born? London (a {brace})"
    bare = LENS.model_copy(update={"system": ""})
    assert [m["role"] for m in render_messages(bare, PAIR)] == ["user"]


def test_a_call_is_named_by_everything_that_decides_its_answer() -> None:
    key = call_for("m", LENS, PAIR, 0).key
    assert call_for("m", LENS, PAIR, 0).key == key
    assert call_for("m", LENS, PAIR, 1).key != key
    assert call_for("other", LENS, PAIR, 0).key != key
    edited = LENS.model_copy(update={"sampling": Sampling(temperature=0.1)})
    assert edited.version != LENS.version and call_for("m", edited, PAIR, 0).key != key
    assert call_for("m", LENS, PAIR, 0).seed != call_for("m", LENS, PAIR, 1).seed


def test_the_cache_returns_an_answer_as_cached_and_free(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    key = call_for("m", LENS, PAIR, 0).key
    assert cache.get(key) is None
    cache.put(key, Answer("text", "stop", 10, 5, 1.5, 2))
    got = cache.get(key)
    assert got == Answer("text", "stop", 10, 5, 0.0, 0, cached=True)
    assert not list(tmp_path.rglob("*.tmp"))
    (tmp_path / key[:2] / f"{key}.json").write_text("{half")
    assert cache.get(key) is None


def test_backoff_is_full_jitter_and_capped() -> None:
    settings = ClientSettings(backoff_s=0.5, max_backoff_s=4.0)
    rng = random.Random(1)
    waits = [[backoff(k, settings, rng) for _ in range(200)] for k in range(6)]
    for k, ws in enumerate(waits):
        assert all(0 <= w <= min(4.0, 0.5 * 2 ** k) for w in ws)
    assert max(waits[5]) > 3.0 and len(set(waits[5])) > 150
