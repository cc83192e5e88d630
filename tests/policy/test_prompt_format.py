"""Prompt formats: an instruct checkpoint's chat template is applied (auto), raw stays raw,
and generation stops at every end token of generation_config, not only the tokenizer's eos."""
from __future__ import annotations

import json

import pytest

from sharpen import api
from sharpen.engines.hf import greedy, sample
from sharpen.errors import UserError
from sharpen.policy import Policy


def test_auto_applies_the_chat_template_with_a_system_turn(chat_checkpoint):
    policy = Policy.load(chat_checkpoint, system_prompt="Be brief.")
    assert policy.prompt_format == "chat"
    assert policy.render_prompt("hi") == "<system>Be brief.\n<user>hi\n<assistant>"
    assert policy.decode(policy.encode_prompt("hi")) == "<system>Be brief.\n<user>hi\n<assistant>"
    assert Policy.load(chat_checkpoint, prompt_format="raw").render_prompt("hi") == "hi"


def test_chat_format_without_a_template_is_a_clear_error(tiny_checkpoint):
    assert Policy.load(tiny_checkpoint).prompt_format == "raw"  # auto: no template, raw text
    with pytest.raises(UserError, match="policy.prompt_format: chat, but .* no chat template"):
        Policy.load(tiny_checkpoint, prompt_format="chat")


def test_the_instruct_model_needs_its_template(chat_checkpoint):
    assert greedy(Policy.load(chat_checkpoint), ["What is 3 plus 4?"], max_new_tokens=12) == ["Answer: 7"]
    assert greedy(Policy.load(chat_checkpoint, prompt_format="raw"), ["What is 3 plus 4?"], max_new_tokens=12) == [""]


def test_generation_stops_at_every_end_token(chat_checkpoint):
    policy = Policy.load(chat_checkpoint)
    eos, unk = policy.tokenizer.eos_token_id, policy.tokenizer.unk_token_id
    assert set(policy.stop_ids) == {eos, unk}
    groups = sample(policy, ["What is 1 plus 6?"] * 4, n=8, temperature=3.0, max_new_tokens=30, seed=3)
    ends = [c.token_ids[-1] for g in groups for c in g if c.finished]
    assert ends and set(ends) <= {eos, unk}
    for c in (c for g in groups for c in g):
        assert not set(c.token_ids[:-1]) & {eos, unk}  # nothing is generated past a stop token
        assert c.finished == (bool(c.token_ids) and c.token_ids[-1] in (eos, unk))


def test_sharpen_eval_takes_task_overrides_and_applies_the_chat_template(chat_checkpoint, tmp_path):
    data = tmp_path / "sevens.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"What is {a % 8} plus {7 - a % 8}?", "answer": "7",
                                        "split": "holdout"}) + "\n" for a in range(16)))
    task = {"name": "jsonl", "path": str(data), "match": "numeric"}
    chat = api.evaluate(chat_checkpoint, task, n=16, k=0, splits=("holdout",))
    raw = api.evaluate(chat_checkpoint, task, n=16, k=0, splits=("holdout",), policy={"prompt_format": "raw"})
    assert chat["holdout"]["greedy_accuracy"] == 1.0 and raw["holdout"]["greedy_accuracy"] == 0.0
