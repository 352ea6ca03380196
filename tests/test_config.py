"""Settings: every bad settings file is one clear line; ``check-config --probe`` asks the server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot import cli
from bot.config import ConfigError, load_settings
from tests.helpers.llm_server import LoopbackLLMServer, RecordedRequest, Reply


def _check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("url", ["not a url", "ftp://x", "", "http://", "https:///v1"])
def test_a_base_url_that_is_no_http_url_is_refused(tmp_path: Path, url: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[llm]\nbase_url = "{url}"\n', encoding="utf-8")

    with pytest.raises(ConfigError) as refused:
        load_settings(path, env={})

    assert str(refused.value) == (
        f"config key [llm.base_url] in {path}: must be an http:// or https:// URL with a host, "
        "such as https://api.featherless.ai/v1 or http://127.0.0.1:11434/v1 "
        f"(got {url!r}); see config.example.toml"
    )


def test_good_base_urls_pass(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    for url in ("http://127.0.0.1:8080/v1", "https://openrouter.ai/api/v1"):
        path.write_text(f'[llm]\nbase_url = "{url}"\n', encoding="utf-8")
        assert load_settings(path, env={}).llm.base_url == url


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "is a directory: pass the settings file itself"),
        (b'[llm]\nbase_url = "caf\xe9"\n', "is not UTF-8 text (byte 0xe9 at offset 21)"),
        (b"[llm\n", "is not valid TOML"),
        (b"llm = 5\n", "config key [llm]"),
    ],
)
def test_every_bad_settings_file_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, expected: str
) -> None:
    path = tmp_path / "conf"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)

    code, out, err = _check(capsys, "--config", str(path), "check-config")

    assert code == 2
    assert out == ""
    assert err.startswith(f"error: config file {path}" if content != b"llm = 5\n" else "error: ")
    assert expected in err
    assert len(err.strip().splitlines()) == 1


def _config(tmp_path: Path, server: LoopbackLLMServer, *, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[llm]\nbase_url = "{server.base_url}"\napi_key = "sk-probe"\n'
        f'narrative_model = "story-7b"\nclassifier_model = "tiny-1b"\n{extra}',
        encoding="utf-8",
    )
    return path


async def _probe(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, list[str]]:
    code = await asyncio.to_thread(cli.main, ["--config", str(config), "check-config", "--probe"])
    return code, capsys.readouterr().out.splitlines()[1:]


async def test_the_probe_says_everything_works(
    llm_server: LoopbackLLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    llm_server.models = ["story-7b", "tiny-1b", "other"]
    llm_server.default = Reply.text('{"ok": true}')

    code, lines = await _probe(capsys, _config(tmp_path, llm_server))

    assert code == 0
    assert lines == [
        f"ok: {llm_server.base_url} lists 3 models, the configured among them",
        "ok: model story-7b answers",
        "ok: model tiny-1b answers",
        "ok: JSON mode (response_format) works with tiny-1b",
        "ok: streaming from story-7b works",
        "probe: the LLM server does all storybot needs",
    ]
    completions = [r for r in llm_server.requests if r.method == "POST"]
    assert [r.json.get("max_tokens") for r in completions] == [1, 1, 20, 1]
    assert [r.stream for r in completions] == [False, False, False, True]
    assert completions[2].json["response_format"] == {"type": "json_object"}
    assert all(r.headers["authorization"] == "Bearer sk-probe" for r in llm_server.requests)


async def test_the_probe_names_a_wrong_model_and_a_refused_json_mode(
    llm_server: LoopbackLLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    llm_server.models = ["story-7b"]

    def answer(request: RecordedRequest) -> Reply:
        if request.json["model"] == "tiny-1b":
            return Reply.status(404, message="model tiny-1b not found")
        if "response_format" in request.json:
            return Reply.status(400, message="response_format is not supported")
        return Reply.text("OK")

    llm_server.default = answer

    code, lines = await _probe(capsys, _config(tmp_path, llm_server))

    assert code == 1
    assert lines[0] == (
        f"warning: {llm_server.base_url} lists 1 models, but not tiny-1b: check the spelling of "
        "[llm] narrative_model / classifier_model"
    )
    assert lines[1] == "ok: model story-7b answers"
    assert lines[2].startswith("failed: model tiny-1b does not answer: the LLM server does not ")
    assert "model tiny-1b not found" in lines[2]
    assert lines[-1] == "probe: 2 problem(s) found"


async def test_the_probe_says_the_key_is_refused(
    llm_server: LoopbackLLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    llm_server.default = Reply.status(401, message="invalid api key")

    code, lines = await _probe(capsys, _config(tmp_path, llm_server))

    assert code == 1
    assert lines[0] == (f"ok: {llm_server.base_url} does not list its models (many do not)")
    assert all(x.startswith("failed: ") for x in lines[1:-1])
    assert "refused the API key (HTTP 401)" in lines[1]
    assert "sk-probe" not in "\n".join(lines)


async def test_the_probe_reports_a_server_that_refuses_json_mode(
    llm_server: LoopbackLLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def answer(request: RecordedRequest) -> Reply:
        if "response_format" in request.json:
            return Reply.status(422, message="Unknown field response_format")
        return Reply.text("OK")

    llm_server.default = answer

    code, lines = await _probe(capsys, _config(tmp_path, llm_server))

    assert code == 0
    assert lines[3].startswith("warning: the server does not take JSON mode (response_format)")


async def test_the_probe_cannot_reach_a_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with LoopbackLLMServer() as server:
        config = _config(tmp_path, server)
    # the server is gone: nothing listens on its port any more

    code, lines = await _probe(capsys, config)

    assert code == 1
    assert lines == [
        f"failed: could not reach the LLM server at {server.base_url}: check [llm] base_url "
        "and that the server runs",
        "probe: 1 problem(s) found",
    ]
