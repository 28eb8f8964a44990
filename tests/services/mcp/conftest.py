"""`knobs mcp` starts only with a token of scope read: every MCP test's environment carries one."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.access.tokens import create_token


@pytest.fixture
def knobs_env(knobs_env: dict[str, str]) -> dict[str, str]:
    token = create_token(Path(knobs_env["KNOBS_HOME"]), "agent", "read")
    return {**knobs_env, "KNOBS_MCP_TOKEN": token}
