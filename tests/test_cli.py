"""The `sharpen` command line: help, `recipes --keys`, `eval` with task overrides, Ctrl-C."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sharpen import api
from sharpen.cli import eval_config, task_config
from tests.conftest import run_cli


cli = run_cli


@pytest.fixture
def sums_jsonl(tmp_path) -> Path:
    """40 one-line sums: enough that eval and holdout (10% each) are not empty."""
    f = tmp_path / "sums.jsonl"
    f.write_text("".join(json.dumps({"prompt": f"{a}+{a + 1}=", "answer": str(2 * a + 1)}) + "\n" for a in range(40)))
    return f


def test_help_exits_0(capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch, "--help")
    assert code == 0, err
    assert "Usage:" in out and "Traceback" not in err
    for command in ("run", "resume", "eval", "scaling", "export", "demo", "demo-real", "recipes", "compare", "sweep", "report"):
        assert f"│ {command} " in out, (command, out)  # every command is registered and listed
    code, out, err = cli(capsys, monkeypatch, "eval", "--help")
    assert code == 0, err
    assert "--max-new-tokens" in out and "--engine" in out


def test_no_args_prints_help(capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch)
    assert code == 2  # click's convention for a bare group: help, usage exit code
    assert "Usage:" in out + err and "recipes" in out + err and "Traceback" not in err


def test_recipe_keys_print_plain_text(capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch, "recipes", "--keys")
    assert code == 0, err
    lines = out.splitlines()
    assert any(l.startswith("task arithmetic: ") for l in lines), out
    assert any(l.startswith("objective sft: ") for l in lines), out
    assert "[bold]" not in out and "[/]" not in out
    assert "PydanticUndefined" not in out and "path=<required>" in out


def test_task_config_parses_overrides_like_run():
    cfg = task_config("jsonl", ["task.path=data.jsonl", "task.match=numeric", "task.seed=3", "task.difficulty=[1, 2]"])
    assert cfg == {"name": "jsonl", "path": "data.jsonl", "match": "numeric", "seed": 3, "difficulty": [1, 2]}
    assert task_config("arithmetic", []) == {"name": "arithmetic"}
    assert task_config("arithmetic", ["task.name=code"]) == {"name": "code"}


@pytest.mark.parametrize("item", ["sample.n=4", "path=x.jsonl", "tasks.path=x", "policy.path=x"])
def test_task_config_rejects_other_keys(item):
    from sharpen.errors import UserError

    with pytest.raises(UserError, match=f"override '{item}'.*task.KEY=VALUE and policy.KEY=VALUE"):
        eval_config("jsonl", [item])


def test_eval_jsonl_with_task_overrides(capsys, monkeypatch, tiny_checkpoint, sums_jsonl):
    """The table shows what the API measures for the same arguments, split by split."""
    from tests.conftest import table_rows

    code, out, err = cli(capsys, monkeypatch, "eval", tiny_checkpoint, "--task", "jsonl", f"task.path={sums_jsonl}",
                         "task.match=numeric", "--prompts", "4", "--k", "2", "--max-new-tokens", "4")
    assert code == 0, err
    assert "pass@2" in out and "Traceback" not in err
    want = api.evaluate(tiny_checkpoint, {"name": "jsonl", "path": str(sums_jsonl), "match": "numeric"}, n=4, k=2,
                        max_new_tokens=4)
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    assert table_rows(out) == [[split, pct(s["greedy_accuracy"]), pct(s["pass_at_k"]), pct(s["majority_accuracy"]), str(s["n"])]
                               for split, s in want.items()], out
    assert [r[0] for r in table_rows(out)] == ["eval", "holdout"]


def test_eval_json_is_one_object_with_metrics_keys(capsys, monkeypatch, tiny_checkpoint, sums_jsonl):
    """stdout is exactly one JSON object (logs go to stderr), with the keys metrics.json has."""
    import json

    args = ("eval", tiny_checkpoint, "--task", "jsonl", f"task.path={sums_jsonl}", "task.match=numeric",
            "--prompts", "4", "--max-new-tokens", "4")
    code, out, err = cli(capsys, monkeypatch, *args, "--k", "2", "--json")
    assert code == 0, err
    got = json.loads(out)
    want = api.evaluate(tiny_checkpoint, {"name": "jsonl", "path": str(sums_jsonl), "match": "numeric"}, n=4, k=2,
                        max_new_tokens=4)
    assert got == {"splits": json.loads(json.dumps(want))}
    assert {"greedy_accuracy", "pass_at_k", "majority_accuracy", "k", "n"} <= set(got["splits"]["holdout"])
    code, out, err = cli(capsys, monkeypatch, *args, "--select", "vote,greedy", "--n", "2", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert set(got["splits"]) == {"eval", "holdout"}
    for split in got["splits"].values():
        assert set(split["select"]) == {"vote", "greedy"} and all(0 <= v <= 1 for v in split["select"].values())


def test_eval_passes_options_to_the_api(capsys, monkeypatch, tiny_checkpoint):
    seen: dict = {}

    def fake_evaluate(checkpoint, task, **kw):
        seen.update(checkpoint=checkpoint, task=task, **{k: v for k, v in kw.items() if k != "progress"})
        return {"holdout": {"greedy_accuracy": 0.5, "pass_at_k": None, "majority_accuracy": None, "n": 4}}

    monkeypatch.setattr(api, "evaluate", fake_evaluate)
    code, out, err = cli(capsys, monkeypatch, "eval", tiny_checkpoint, "task.width=2", "policy.dtype=float32",
                         "--prompts", "4", "--k", "0", "--engine", "vllm", "--max-new-tokens", "12")
    assert code == 0, err
    assert seen == {"checkpoint": Path(tiny_checkpoint), "task": {"name": "arithmetic", "width": 2}, "n": 4, "k": 0,
                    "seed": 0, "engine": "vllm", "max_new_tokens": 12, "policy": {"dtype": "float32"}}
    assert "50.0%" in out
    seen.clear()
    code, _, err = cli(capsys, monkeypatch, "eval", tiny_checkpoint)
    assert code == 0, err
    assert seen["engine"] == "hf" and seen["max_new_tokens"] is None and seen["policy"] == {}


def test_eval_applies_an_instruct_checkpoints_chat_template(capsys, monkeypatch, chat_checkpoint, tmp_path):
    data = tmp_path / "sevens.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"What is {a % 8} plus {7 - a % 8}?", "answer": "7",
                                        "split": ("eval", "holdout")[a % 2]}) + "\n" for a in range(16)))
    args = ["eval", chat_checkpoint, "--task", "jsonl", f"task.path={data}", "task.match=numeric", "--k", "0"]
    code, out, err = cli(capsys, monkeypatch, *args)
    assert code == 0, err
    assert out.count("│ 100.0% │") == 2  # chat template applied: the model answers, on both splits
    code, out, err = cli(capsys, monkeypatch, *args, "policy.prompt_format=raw")
    assert code == 0, err
    assert out.count("│   0.0% │") == 2 and "100.0%" not in out  # raw text: it ends its turn at once


def test_eval_unknown_task_key_is_one_line_error(capsys, monkeypatch, tiny_checkpoint, sums_jsonl):
    code, _, err = cli(capsys, monkeypatch, "eval", tiny_checkpoint, "--task", "jsonl", f"task.path={sums_jsonl}",
                       "task.pathx=other.jsonl", "--prompts", "4", "--k", "0")
    assert code == 2, err
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "task.pathx" in lines[0], err


def test_ctrl_c_exits_130_with_a_resume_hint(capsys, monkeypatch, tiny_checkpoint):
    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "evaluate", interrupted)
    code, _, err = cli(capsys, monkeypatch, "eval", tiny_checkpoint)
    assert code == 130
    assert "interrupted" in err and "Traceback" not in err
