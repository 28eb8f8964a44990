"""Hostile distillation inputs: question-answer JSONL files and lens files. Each is read and the
request logged as `knobs distill` does (the server check between is beside the point here), or
refused with BadInput that says what is wrong, and a refused input logs nothing."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings

from events.settings import EventsSettings
from events.store.factory import open_store
from services.core.errors import BadInput
from services.distillation.lenses import BUILTIN_DIR, load_lenses, select_lenses
from services.distillation.request import Endpoint, load_pairs, request
from tests.faults import count, faults
from tests.mutations import hostile_files, jsonl_dump, jsonl_load, yaml_dump

ENDPOINT = Endpoint(base_url="http://127.0.0.1:9/v1", model="m")  # request() logs it, never calls it
PAIRS = b"".join(json.dumps(p).encode() + b"\n" for p in [
    {"id": "ada", "question": "Where was Ada Lovelace born?", "answer": "London", "context": "Ada ..."},
    {"id": 7, "question": "Capital of France?", "answer": "Paris", "subject": "France",
     "attribute": "capital", "known_answer": True, "facts": {"capital": "Paris"}},
])
LENS = "restate"
RESTATE = (BUILTIN_DIR / f"{LENS}.yaml").read_bytes()
FUZZ = settings(max_examples=count(40, 1500), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def asks_or_refuses_cleanly(tmp_path: Path, pairs: Path, lens_dir: list[Path]) -> None:
    with open_store(EventsSettings(sqlite_path=tmp_path / "events.sqlite3")) as store:
        before = store.head()
        try:
            pair_set, loaded = load_pairs(str(pairs))
            chosen = select_lenses(LENS, load_lenses(lens_dir))
            request(store, pair_set, loaded, chosen, samples=1, engine="llm", endpoint=ENDPOINT)
        except BadInput as exc:
            assert str(exc).strip(), "a refusal must say what is wrong"
            assert store.head() == before, f"a refused input logged events: {exc}"


@faults
@FUZZ
@example(data=b'{"id": "\\ud800", "question": "q", "answer": "a"}\n').via("the soak")
@example(data=b"\x80\n").via("the first run")
@given(data=hostile_files([PAIRS], jsonl_load, jsonl_dump))
def test_a_hostile_pairs_file_is_asked_for_or_refused_without_logging(tmp_path: Path, data: bytes) -> None:
    # Given a mutated question-answer JSONL file (or random bytes)
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(data)
    # When a distillation of it is asked for, it is logged, or BadInput says why and nothing is logged
    asks_or_refuses_cleanly(tmp_path, path, [])


@faults
@FUZZ
@example(data=b'name: "\\U7fffffff"\n').via("the spec soak")  # PyYAML's ValueError on this escape
@example(data=RESTATE.replace(b"max_chars: 960", b"max_chars: 99999999999999999999"))  # a 65-bit number
@given(data=hostile_files([RESTATE], yaml.safe_load, yaml_dump))
def test_a_hostile_lens_file_is_used_or_refused_without_logging(tmp_path: Path, data: bytes) -> None:
    # Given a user's lens directory whose `restate` is a mutated lens file (or random bytes)
    lenses = tmp_path / "lenses"
    lenses.mkdir(exist_ok=True)
    (lenses / f"{LENS}.yaml").write_bytes(data)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_bytes(PAIRS)
    # When a distillation through it is asked for, it is logged, or BadInput says why and nothing is logged
    asks_or_refuses_cleanly(tmp_path, pairs, [lenses])
