"""The import-linter contracts in pyproject.toml hold today and break when the layout is broken.

Each case copies the four packages and pyproject.toml into a temporary tree, makes one change
a careless commit could make, and runs the real `lint-imports` over the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("events", "graph", "services", "workers")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _copy_tree(into: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, into / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")
    return into


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first: the copy, not the editable install of the checkout, is what grimp reads.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")


def test_the_contracts_hold_on_the_tree_as_it_is(tmp_path: Path) -> None:
    result = _lint(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and " 0 broken" in result.stdout


BREAKAGES = {
    # a domain reaching back up into a door
    "ranking imports the CLI": (
        "services/ranking/evidence.py", "from services.cli import output",
        "services: doors -> domains -> experiments -> queries -> core -> infra",
    ),
    # the arrow this layout removed: experiments below importing
    "experiments imports importing": (
        "services/experiments/knobs.py", "from services.importing import batch",
        "services: doors -> domains -> experiments -> queries -> core -> infra",
    ),
    # two sibling domains tied together
    "export imports ranking": (
        "services/export/snapshot.py", "from services.ranking import audit",
        "services: sibling domains are independent",
    ),
    # the circle this layout broke: the Corpus type's module importing a generator
    "corpus imports biographies": (
        "workers/data/corpus.py", "from workers.data import biographies",
        "workers.data: one module owns Corpus; the generators use it; sources picks one",
    ),
    # the statistics reaching up into the ranking that calls them
    "analysis imports the audit": (
        "services/ranking/analysis/ofat.py", "from services.ranking import audit",
        "services.ranking: callers -> rank -> evidence -> readmodel -> analysis",
    ),
    # a domain reaching past core into the local services
    "export imports infra": (
        "services/export/snapshot.py", "from services.infra import runtime",
        "services: domains reach infra only through core",
    ),
    # a sibling domain reading experiments' designs, which only ranking does
    "access imports experiments": (
        "services/access/health.py", "from services.experiments import spec",
        "services: only ranking reads experiments",
    ),
    # a job reaching up into the process that runs it
    "train imports the dispatcher": (
        "workers/jobs/train.py", "from workers import dispatch",
        "workers: processes -> dispatch -> actors -> attempt -> child -> jobs -> data",
    ),
}


@pytest.mark.parametrize("case", sorted(BREAKAGES))
def test_a_back_arrow_breaks_its_contract(tmp_path: Path, case: str) -> None:
    module, line, contract = BREAKAGES[case]
    tree = _copy_tree(tmp_path)
    _append(tree / module, line)
    result = _lint(tree)
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout, result.stdout


def test_a_loose_module_in_services_must_be_given_a_floor(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    (tree / "services" / "helpers.py").write_text('"""A new loose module."""\n')
    result = _lint(tree)
    assert "services: doors -> domains -> experiments -> queries -> core -> infra BROKEN" in result.stdout
    assert "services.helpers" in result.stdout
