"""`engine: openai` against a fake OpenAI-compatible server backed by the tiny model."""
from __future__ import annotations

import socket
import time

import pytest
import torch

pytest.importorskip("openai")

from fake_openai_server import serve  # noqa: E402  (tests/engines is on sys.path)

from sharpen.engines.openai_engine import OpenAIEngine  # noqa: E402
from sharpen.errors import UserError  # noqa: E402
from sharpen.policy import build_char_tokenizer, new_tiny_policy  # noqa: E402
from sharpen.types import Engine, SamplingParams  # noqa: E402

PROMPTS = ["1+2=", "0321+0654=", "x", "def f(a, b):\n  return "]


@pytest.fixture(scope="module")
def policy():
    return new_tiny_policy(0)


@pytest.fixture(scope="module")
def server(policy):
    requests: list[dict] = []
    with serve(policy.model, policy.tokenizer, requests=requests) as url:
        yield url, requests


@pytest.fixture
def engine(server, policy):
    eng = OpenAIEngine(server[0], "tiny", tokenizer=policy.tokenizer, max_retries=0)
    yield eng
    eng.close()


def test_shapes_order_and_progress(engine, server):
    assert isinstance(engine, Engine) and engine.syncs_weights is False
    ticks: list[int] = []
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=10)
    groups = engine.generate(PROMPTS, params, seeds=[11, 12, 13, 14], progress=ticks.append)
    assert [len(g) for g in groups] == [3] * len(PROMPTS)
    assert ticks == [1] * len(PROMPTS)
    for g in groups:
        for c in g:
            # re-encoded ids (the untrained model also emits pad/bos, which the text drops)
            assert 1 <= len(c.logprobs) <= 10 and all(x <= 0 for x in c.logprobs)
            ids = engine.tokenizer.encode(c.text, add_special_tokens=False)
            assert c.token_ids == ids + ([engine.tokenizer.eos_token_id] if c.finished else [])
    # one request per prompt, carrying that prompt's seed and n (so batching cannot matter)
    sent = {r["prompt"]: r for r in server[1][-len(PROMPTS):]}
    assert {p: (sent[p]["seed"], sent[p]["n"], sent[p]["logprobs"]) for p in PROMPTS} == \
        {p: (s, 3, 1) for p, s in zip(PROMPTS, [11, 12, 13, 14])}
    # results in prompt order: prompt i alone with seed i gives the same samples
    alone = engine.generate([PROMPTS[2]], params, seeds=[13])[0]
    assert [c.text for c in alone] == [c.text for c in groups[2]]


def test_seeds_decide_samples(engine):
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=12)
    a = engine.generate(PROMPTS[:2], params, seeds=[1, 2])
    b = engine.generate(PROMPTS[:2], params, seeds=[1, 2])
    c = engine.generate(PROMPTS[:2], params, seeds=[7, 8])
    texts = lambda groups: [[x.text for x in g] for g in groups]  # noqa: E731
    assert texts(a) == texts(b)
    assert texts(a) != texts(c)
    assert [[x.logprobs for x in g] for g in a] == [[x.logprobs for x in g] for g in b]


def test_exact_ids_and_logprobs_match_policy_under_temperature(server, policy):
    """With the server's own ids (vLLM's return_tokens_as_token_ids) ids and log-probs align
    one to one and equal the policy's log_softmax(logits / T) of the same tokens."""
    eng = OpenAIEngine(server[0], "tiny", tokenizer=policy.tokenizer, max_retries=0,
                       extra_body={"return_tokens_as_token_ids": True})
    params = SamplingParams(n=3, temperature=0.7, max_new_tokens=40)
    flat = [(p, c) for p, g in zip(PROMPTS, eng.generate(PROMPTS, params, seeds=[3, 4, 5, 6])) for c in g]
    eng.close()
    assert any(c.finished for _, c in flat), "want at least one eos-terminated sample"
    lp, mask = policy.token_logprobs([policy.encode_prompt(p) for p, _ in flat], [c.token_ids for _, c in flat],
                                     temperature=0.7)
    for r, (_, c) in enumerate(flat):
        assert len(c.token_ids) == len(c.logprobs) == int(mask[r].sum())
        assert c.finished == (c.token_ids[-1] == policy.eos_id)
        assert policy.decode(c.token_ids) == c.text
        assert torch.allclose(lp[r, : len(c.logprobs)], torch.tensor(c.logprobs), atol=1e-4)


def test_greedy_sends_temperature_zero(engine, server):
    groups = engine.generate(["1+2="], SamplingParams(n=2, temperature=0.0, max_new_tokens=8), seeds=[1])
    assert server[1][-1]["temperature"] == 0
    assert groups[0][0].text == groups[0][1].text


def test_no_tokenizer_gives_empty_ids(server):
    eng = OpenAIEngine(server[0], "tiny", max_retries=0)
    (c,), = eng.generate(["x"], SamplingParams(n=1, max_new_tokens=5), seeds=[0])
    assert c.token_ids == [] and len(c.logprobs) >= 1 and server[1][-1]["prompt"] == "x"
    eng.close()


def test_chat_template_rendered_locally(server, policy):
    tok = build_char_tokenizer()
    tok.chat_template = ("{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}[assistant]{% endif %}")
    eng = OpenAIEngine(server[0], "tiny", tokenizer=tok, system_prompt="be brief", max_retries=0)
    eng.generate(["1+2="], SamplingParams(n=1, max_new_tokens=4), seeds=[0])
    assert server[1][-1]["prompt"] == "[system]be brief\n[user]1+2=\n[assistant]"
    raw = OpenAIEngine(server[0], "tiny", tokenizer=tok, prompt_format="raw", max_retries=0)
    raw.generate(["1+2="], SamplingParams(n=1, max_new_tokens=4), seeds=[0])
    assert server[1][-1]["prompt"] == "1+2="
    eng.close(), raw.close()


def test_unreachable_url_is_a_user_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block exits
    eng = OpenAIEngine(f"http://127.0.0.1:{port}/v1", "tiny", timeout=2, max_retries=0)
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        eng.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=4), seeds=[0, 1, 2, 3])
    assert time.monotonic() - start < 5
    msg = str(err.value)
    assert msg.startswith(f"engine.base_url: cannot reach http://127.0.0.1:{port}/v1 (") and "\n" not in msg
    assert err.value.field == "engine.base_url" and err.value.__cause__ is None


def test_unknown_model_names_engine_model(server):
    eng = OpenAIEngine(server[0], "nope", max_retries=0)
    with pytest.raises(UserError) as err:
        eng.generate(["x"], SamplingParams(max_new_tokens=2), seeds=[0])
    assert str(err.value).startswith("engine.model:") and "'tiny'" not in str(err.value) and "tiny" in str(err.value)
    assert err.value.field == "engine.model"
    eng.close()
