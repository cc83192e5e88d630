"""An API key reaches the server and nothing else: no file of the run directory (gzip and
TensorBoard files included), no console line, no error message, no worker's argument.

The stand-in server (tests/engines/fake_openai_server.py, 127.0.0.1 only) answers 401 to
any request without the key, so a run that finishes proves the key was sent.
"""
from __future__ import annotations

import gzip
import secrets
import sys
from pathlib import Path

import pytest

pytest.importorskip("openai")

sys.path.insert(0, str(Path(__file__).parent / "engines"))
from fake_openai_server import serve  # noqa: E402

from sharpen.config import load_recipe  # noqa: E402
from sharpen.errors import UserError  # noqa: E402
from sharpen.policy import Policy  # noqa: E402
from tests.conftest import run_cli  # noqa: E402


def new_key() -> str:
    return "sk-sharpen-test-" + secrets.token_hex(12)


def files_holding(root: Path, key: str) -> list[str]:
    """Every file under `root` whose bytes (or gunzipped bytes) contain `key`."""
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".gz":
            data += gzip.decompress(data)
        if key.encode() in data:
            hits.append(str(path.relative_to(root)))
    return hits


@pytest.fixture
def keyed_server(tiny_checkpoint):
    key, seen = new_key(), []
    policy = Policy.load(tiny_checkpoint)
    with serve(policy.model, policy.tokenizer, api_key=key, keys=seen) as url:
        yield url, key, seen


def test_engine_key_reaches_the_server_and_no_file_or_line(keyed_server, micro_overrides, tmp_path, capsys, monkeypatch):
    url, key, seen = keyed_server
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    run = tmp_path / "run"
    engine = ["engine.kind=openai", f"engine.base_url={url}", "engine.model=tiny"]
    code, out, err = run_cli(capsys, monkeypatch, "run", "star", *micro_overrides, *engine, f"engine.api_key={key}",
                             "--out", run)
    assert code == 0, err
    assert seen and set(seen) == {key}  # every request carried it, so the server's 401 never fired
    assert (run / "rounds" / "1" / "metrics.json").exists() and (run / "config.yaml").read_text().count("api_key: null") == 1
    assert files_holding(tmp_path, key) == [] and key not in out + err

    # a resumed run is given the key again: without it the server refuses, in one line naming the field
    code, out, err = run_cli(capsys, monkeypatch, "resume", run, "rounds=2")
    assert code == 2 and err.startswith("error: engine.api_key: ") and err.count("\n") == 1, err
    assert not (run / "rounds" / "2" / "metrics.json").exists()
    code, out, err = run_cli(capsys, monkeypatch, "resume", run, "rounds=2", f"engine.api_key={key}")
    assert code == 0, err
    assert (run / "rounds" / "2" / "metrics.json").exists()
    assert files_holding(tmp_path, key) == [] and key not in out + err


def test_judge_key_by_environment_variable(keyed_server, micro_overrides, tmp_path, capsys, monkeypatch):
    url, key, seen = keyed_server
    monkeypatch.setenv("SHARPEN_TEST_JUDGE_KEY", key)
    run = tmp_path / "run"
    judge = ["feedback.model=openai", f"feedback.base_url={url}", "feedback.model_name=tiny",
             "feedback.api_key_env=SHARPEN_TEST_JUDGE_KEY"]
    code, out, err = run_cli(capsys, monkeypatch, "run", "self_rewarding", *micro_overrides, *judge, "--out", run)
    assert code == 0, err
    assert seen and set(seen) == {key}
    config = (run / "config.yaml").read_text()
    assert "api_key_env: SHARPEN_TEST_JUDGE_KEY" in config  # the variable's name is the recipe; its value is not
    assert files_holding(tmp_path, key) == [] and key not in out + err
    # the same variable serves the resumed run
    code, out, err = run_cli(capsys, monkeypatch, "resume", run, "rounds=2")
    assert code == 0, err
    monkeypatch.delenv("SHARPEN_TEST_JUDGE_KEY")
    code, out, err = run_cli(capsys, monkeypatch, "resume", run, "rounds=3")
    assert code == 2 and "feedback.api_key_env" in err and "SHARPEN_TEST_JUDGE_KEY is not set" in err, err
    assert files_holding(tmp_path, key) == []


def test_a_wrong_key_is_one_line_that_never_echoes_it(keyed_server, micro_overrides, tmp_path, capsys, monkeypatch):
    url, _, _ = keyed_server
    wrong = new_key()
    engine = ["engine.kind=openai", f"engine.base_url={url}", "engine.model=tiny", f"engine.api_key={wrong}"]
    code, out, err = run_cli(capsys, monkeypatch, "run", "star", *micro_overrides, *engine, "--out", tmp_path / "run")
    assert code == 2 and err.startswith("error: engine.api_key: ") and err.count("\n") == 1, err
    assert wrong not in out + err and files_holding(tmp_path, wrong) == []


def test_keys_are_never_dumped_echoed_or_handed_on(monkeypatch):
    key = new_key()
    rec = load_recipe("star", ["engine.kind=openai", "engine.base_url=http://127.0.0.1:9/v1", "engine.model=m",
                               f"engine.api_key={key}"])
    assert rec.engine.api_key.get_secret_value() == key
    assert key not in repr(rec) and key not in str(rec.model_dump()) and rec.resolved()["engine"]["api_key"] is None
    # a bad value next to a key: the message names the override without the key
    with pytest.raises(UserError) as err:
        load_recipe("star", [f"engine.api_key={key}", "engine.api_key_env=not a name"])
    assert key not in str(err.value) and "engine.api_key_env" in str(err.value)
    # workers get resolved() (no key) and find a literal key in the environment they inherit
    from sharpen.engines.openai_client import export_keys, resolve_key

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    again = load_recipe(rec.resolved(), [])
    assert again.engine.api_key is None and resolve_key(None, "http://127.0.0.1:9/v1") == "EMPTY"
    names = export_keys(rec)
    for name in names:
        monkeypatch.setenv(name, key)  # registered so monkeypatch removes it afterwards
    assert resolve_key(again.engine.api_key, "http://127.0.0.1:9/v1") == key
    assert resolve_key(None, "http://127.0.0.1:8/v1") == "EMPTY"  # only ever sent where it was given


def test_a_ray_task_is_never_handed_a_key(monkeypatch):
    pytest.importorskip("ray")
    from sharpen.executors.ray_jobs import run_on_ray

    data = {"engine": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": new_key()}}
    with pytest.raises(ValueError, match="holds a key"):
        run_on_ray(lambda *a: "", {"x": (data, Path("x"))}, load_recipe("star").ray)
