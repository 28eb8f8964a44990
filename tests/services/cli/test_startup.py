"""`knobs` starts without the heavy libraries: building the command line (every command, its help
and options) and printing help import none of them; each command imports what it needs when it
runs. How fast that is, is a benchmark's business, not a test's: these check what is imported."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("neo4j", "pandas", "scipy", "numpy", "torch", "matplotlib", "fastapi", "SALib")
GROUPS = ("services", "graph", "import", "token", "experiment", "export", "shift", "repetition", "plot",
          "lenses", "distill")


def python(code: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter, from the checkout's root (so it imports this checkout)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def heavy_after(code: str) -> list[str]:
    """The heavy libraries in sys.modules once `code` has run."""
    probe = python(f"{code}\nimport json, sys\n"
                   f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    assert probe.returncode == 0, probe.stderr
    found: list[str] = json.loads(probe.stdout.splitlines()[-1])
    return found


def test_importing_the_command_line_imports_no_heavy_library() -> None:
    assert heavy_after("import services.cli.main") == []


@pytest.mark.parametrize("args", [["--help"], ["rank", "--help"], ["events", "--help"],
                                  ["distill", "--help"], ["repetition", "report", "--help"]])
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    run = ("import runpy, sys\n"
           f"sys.argv = ['knobs', *{args!r}]\n"
           "try:\n"
           "    runpy.run_module('services.cli.main', run_name='__main__')\n"
           "except SystemExit as exc:\n"
           "    assert exc.code in (0, None), exc.code\n")
    assert heavy_after(run) == []


def test_help_exits_0_and_lists_the_command_groups() -> None:
    # When `knobs --help` runs as a person runs it
    shown = subprocess.run([sys.executable, "-m", "services.cli.main", "--help"], capture_output=True,
                           text=True, cwd=ROOT, timeout=120)

    # Then it succeeds and names every group, the plugins' commands (entry points) among them
    assert shown.returncode == 0, shown.stderr
    listed = set(re.findall(r"^\S\s([a-z][a-z-]*)\s{2,}", shown.stdout, re.MULTILINE))
    assert listed >= {*GROUPS, "rank", "events", "serve", "worker", "dispatcher"}, shown.stdout
