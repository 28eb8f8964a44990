"""The analytic self-test: every check passes, its analytic values are right, the CLI reports it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from SALib.test_functions import Ishigami, Sobol_G
from typer.testing import CliRunner

from services.cli.main import app
from services.ranking.analysis import selftest
from services.ranking.analysis.selftest import (
    G_A,
    SelfTestCheck,
    gsa_selftest,
    ishigami,
    ishigami_indices,
    sobol_g,
    sobol_g_indices,
)


@pytest.fixture(scope="module")
def checks() -> list[SelfTestCheck]:
    return gsa_selftest(seed=0)


def test_every_check_passes(checks: list[SelfTestCheck]) -> None:
    failed = [c for c in checks if not c.passed]
    assert not failed, failed
    names = [c.name for c in checks]
    assert "sobol ishigami S1[x1]" in names and "sobol ishigami S2[x1,x3]" in names
    assert "sobol G ST[x6]" in names and "morris G mu_star order of influential factors" in names
    assert len(checks) == 9 + 12 + 3


def test_a_wrong_expectation_fails(checks: list[SelfTestCheck]) -> None:
    # The comparison can fail: the same computed value against a shifted expectation does
    ok = next(c for c in checks if c.name == "sobol G S1[x1]")
    assert isinstance(ok.expected, float) and isinstance(ok.got, float)
    assert selftest._close("x", ok.expected, ok.got, (1e-2, 1e-6), "").passed
    assert not selftest._close("x", ok.expected + 0.02, ok.got, (1e-2, 1e-6), "").passed
    assert not selftest._close("x", ok.expected, None, (1e-2, 1e-6), "").passed


def test_analytic_values_agree_with_salib_test_functions() -> None:
    s1, st = sobol_g_indices(G_A)
    np.testing.assert_allclose(s1, Sobol_G.sensitivity_index(np.array(G_A)), rtol=1e-12)
    np.testing.assert_allclose(st, Sobol_G.total_sensitivity_index(np.array(G_A)), rtol=1e-12)
    s1_i, st_i, s2_i = ishigami_indices()
    np.testing.assert_allclose(s1_i, [0.3139, 0.4424, 0.0], atol=1e-4)
    np.testing.assert_allclose(st_i, [0.5576, 0.4424, 0.2437], atol=1e-4)
    assert s2_i[(0, 2)] == pytest.approx(st_i[2])
    x = np.array([[0.1, -2.0, 3.0], [1.5, 0.7, -0.2]])
    np.testing.assert_allclose([ishigami(*row) for row in x], Ishigami.evaluate(x), rtol=1e-12)
    g = np.array([[0.1, 0.9, 0.3, 0.5, 0.2, 0.77]])
    np.testing.assert_allclose([sobol_g(g[0])], Sobol_G.evaluate(g, np.array(G_A)), rtol=1e-12)


def test_cli_prints_the_table_and_exits_0() -> None:
    result = CliRunner().invoke(app, ["selftest"])
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0].split()
    assert header == ["check", "expected", "got", "tolerance", "ok"]
    assert "sobol ishigami ST[x3]" in result.output
    assert "24 of 24 checks passed" in result.output
    assert "FAIL" not in result.output


def test_cli_json_and_exit_1_on_a_failed_check(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = [SelfTestCheck(name="sobol G S1[x1]", expected=0.72, got=0.5, tolerance="±0.01", passed=False),
           SelfTestCheck(name="sobol G S1[x2]", expected=0.18, got=0.18, tolerance="±0.01", passed=True)]
    monkeypatch.setattr(selftest, "gsa_selftest", lambda seed=0: bad)
    result = CliRunner().invoke(app, ["selftest", "--json"])
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert body["ok"] is False and [c["passed"] for c in body["checks"]] == [False, True]
    table = CliRunner().invoke(app, ["selftest"])
    assert table.exit_code == 1 and "FAIL" in table.output and "1 of 2 checks passed" in table.output
