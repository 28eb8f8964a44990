"""`knobs lenses list|show|check` as a user runs them: the real `knobs` entry (exit codes
included), a private KNOBS_HOME, a lens directory of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from services.distillation.lenses import BUILTIN_DIR, load_lenses

ROOT = Path(__file__).resolve().parents[3]
MINE = {"name": "mine", "family": "causal", "description": "My own causal lens.",
        "template": "{question} {answer}\nSay why. Write only the reason."}


def knobs(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KNOBS_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("KNOBS_LENS_DIRS", None)
    return subprocess.run([sys.executable, "-m", "services.cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_list_shows_every_lens_with_version_and_origin(home: Path, tmp_path: Path) -> None:
    lens_dir = tmp_path / "lenses"
    lens_dir.mkdir()
    (lens_dir / "mine.yaml").write_text(yaml.safe_dump(MINE))
    (lens_dir / "restate.yaml").write_text(yaml.safe_dump({**MINE, "name": "restate", "family": "restate"}))

    done = knobs(home, "lenses", "list", "--lens-dir", str(lens_dir), "--json")

    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    builtins = load_lenses()
    assert set(rows) == set(builtins) | {"mine"}
    assert rows["quiz"] == {"name": "quiz", "family": "quiz", "version": builtins["quiz"].version,
                            "origin": "builtin", "overrides": None,
                            "description": builtins["quiz"].lens.description}
    assert rows["mine"]["origin"] == str(lens_dir / "mine.yaml")
    assert rows["restate"]["overrides"] == "builtin"
    # The table a person reads says the same, and says which lens replaced a builtin
    text = knobs(home, "lenses", "list", "--lens-dir", str(lens_dir), "--family", "causal").stdout
    assert "causal" in text and "mine" in text and "quiz" not in text
    assert "(overrides builtin)" in knobs(home, "lenses", "list", "--lens-dir", str(lens_dir)).stdout


def test_a_lens_in_knobs_home_is_found_without_a_flag(home: Path) -> None:
    (home / "lenses").mkdir(parents=True)
    (home / "lenses" / "mine.yaml").write_text(yaml.safe_dump(MINE))
    done = knobs(home, "lenses", "show", "mine", "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["origin"] == str(home / "lenses" / "mine.yaml")
    assert shown["lens"]["template"] == MINE["template"]
    assert shown["lens"]["sampling"] == {"temperature": 0.8, "top_p": 0.95, "max_tokens": 256}


def test_show_prints_the_whole_lens_and_its_version(home: Path) -> None:
    done = knobs(home, "lenses", "show", "wrong-then-right")
    assert done.returncode == 0, done.stderr
    lens = load_lenses()["wrong-then-right"]
    assert f"version {lens.version}" in done.stdout
    assert "family correction" in done.stdout
    for line in lens.lens.template.splitlines():
        assert line.strip() in done.stdout
    assert f"max_tokens {lens.lens.sampling.max_tokens}" in done.stdout


def test_an_unknown_lens_is_one_line_and_exit_2(home: Path) -> None:
    done = knobs(home, "lenses", "show", "restat")
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: unknown lens 'restat': did you mean restate? `knobs lenses "
                                   f"list` shows the {len(load_lenses())} lenses (a user lens goes in "
                                   "$KNOBS_HOME/lenses or --lens-dir)")
    assert knobs(home, "lenses", "list", "--family", "nope").returncode == 2
    assert knobs(home, "lenses", "list", "--lens-dir", str(home / "missing")).returncode == 2


def test_a_bad_lens_file_in_a_user_directory_stops_list_naming_it(home: Path, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    bad = tmp_path / "d" / "mine.yaml"
    bad.write_text(yaml.safe_dump({**MINE, "sampling": {"max_tokens": 0}}))
    done = knobs(home, "lenses", "list", "--lens-dir", str(tmp_path / "d"))
    assert done.returncode == 2
    assert f"{bad}: field `sampling.max_tokens`" in done.stderr


def test_check_says_ok_or_the_error_per_file_and_exits_2_if_any_is_bad(home: Path, tmp_path: Path) -> None:
    good = tmp_path / "mine.yaml"
    good.write_text(yaml.safe_dump(MINE))
    done = knobs(home, "lenses", "check", str(good), str(BUILTIN_DIR))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("OK ") == 1 + len(list(BUILTIN_DIR.glob("*.yaml")))

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**MINE, "name": "bad", "template": "{question} {answr}"}))
    done = knobs(home, "lenses", "check", str(good), str(bad))
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"OK    {good}")
    assert lines[1] == f"BAD   {bad}: field `template`: unknown placeholder {{answr}}; a template may use " \
                       "{question}, {answer} and {context} (literal braces: {{ and }})"
    assert lines[2] == "1 of 2 bad"
