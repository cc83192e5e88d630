"""The judge feedback: verdict probabilities read from the right tokens of one next-token
distribution (local policy, stub, OpenAI-compatible server), the expected score, the
left-padded batched forward, the tasks' judge formats and negatives, and the recipe."""
import math
import random
from types import SimpleNamespace

import pytest
import torch

from sharpen.config import load_recipe
from sharpen.errors import UserError
from sharpen.feedback.judge import JudgeConfig, judge, rewards_from
from sharpen.policy import Policy, new_tiny_policy
from sharpen.policy.lora import apply_lora
from sharpen.tasks import make_task
from sharpen.tasks.base import has_judge_format
from sharpen.types import Completion, Sample
from tests.engines.fake_openai_server import serve

SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)


class StubJudge:
    """A PolicyModel-like judge whose next-token distribution is known: ids by character."""

    def __init__(self, probs):
        self.probs = probs  # char -> probability
        self.asked = []

    def encode_completion(self, text, eos=True):
        return [ord(text[0])]

    def encode_prompts(self, texts):
        return [[1] for _ in texts]

    def next_token_logprobs(self, prompt_ids, candidates):
        self.asked.append(list(candidates))
        return torch.log(torch.tensor([[self.probs.get(chr(c), 1e-12) for c in candidates]] * len(prompt_ids)))


def test_p_yes_is_read_from_the_verdict_tokens(fake_ctx, make_samples):
    ctx = fake_ctx(policy=StubJudge({"y": 0.3, "Y": 0.1, "n": 0.2, "N": 0.0, "z": 0.4}))
    # "yes" and "yup" share their first token: it counts once
    ctx.task.judge_verdicts = (("yes", "Yes", "yup"), ("no", "No"))
    ctx.task.judge_prompt = lambda p, c: p.text + c
    rated = judge(make_samples({"a": ("7", ["x|7", "x|8"])}), JudgeConfig(), ctx)
    # (0.3 + 0.1) / (0.3 + 0.1 + 0.2): both yes variants summed; 'z' is not a verdict
    assert [s.reward for s in rated.scored] == pytest.approx([0.4 / 0.6] * 2)
    assert rated.scored[0].scores["judge"] == rated.scored[0].reward
    assert rated.stats["verdict_mass"] == pytest.approx(0.6, rel=1e-5)
    assert rated.stats["mean_p_yes"] == pytest.approx(0.4 / 0.6)
    assert rated.stats["judge_accuracy"] == 0.5  # yes to both; one is correct
    assert sorted(ctx.policy.asked[0]) == sorted(map(ord, "yYnN"))


def test_a_task_without_a_judge_format_gets_the_generic_prompt_and_verdicts(fake_ctx, make_samples):
    seen = []

    class Recording(StubJudge):
        def encode_prompts(self, texts):
            seen.extend(texts)
            return super().encode_prompts(texts)

    ctx = fake_ctx(policy=Recording({"y": 0.2, "n": 0.6}))
    rated = judge(make_samples({"a": ("7", ["x|7"])}), JudgeConfig(), ctx)
    assert rated.scored[0].reward == pytest.approx(0.25)
    assert seen[0].startswith("a=\n\nProposed answer:\nx|7\n\n") and seen[0].endswith("Reply yes or no.")


def test_expected_score_over_score_tokens(fake_ctx, make_samples):
    probs = torch.tensor([[0.1, 0.0, 0.2, 0.0, 0.2]])  # scores 1..5, mass 0.5
    r, mass = rewards_from(probs, JudgeConfig(mode="expected_score"))
    # E[k] over k = 0..4 = (0 * 0.2 + 2 * 0.4 + 4 * 0.4) = 2.4 -> 2.4 / 4
    assert r[0] == pytest.approx(0.6) and mass[0] == pytest.approx(0.5)
    assert rewards_from(torch.zeros(1, 2), JudgeConfig())[0] == [0.5]  # no verdict mass: no opinion
    # the same through the feedback: score tokens '1'..'5' of the stub, 'x' not a score
    ctx = fake_ctx(policy=StubJudge({"1": 0.1, "3": 0.2, "5": 0.2, "x": 0.5}))
    rated = judge(make_samples({"a": ("7", ["x|7"])}), JudgeConfig(mode="expected_score"), ctx)
    assert rated.scored[0].reward == pytest.approx(0.6) and rated.stats["verdict_mass"] == pytest.approx(0.5, rel=1e-5)
    assert "mean_score" in rated.stats and "mean_p_yes" not in rated.stats


def test_a_first_token_two_verdicts_share_is_dropped(fake_ctx, make_samples):
    ctx = fake_ctx(policy=StubJudge({"y": 0.2, "n": 0.2, "s": 0.5}))
    ctx.task.judge_verdicts = (["yes", "sure"], ["no", "so-so"])  # 's' means neither
    assert judge(make_samples({"a": ("7", ["x|7"])}), JudgeConfig(), ctx).scored[0].reward == pytest.approx(0.5)
    assert ctx.policy.asked[0] == [ord("y"), ord("n")]
    with pytest.raises(UserError, match="first tokens differ"):  # '1' begins both: score 1 has no token left
        judge(make_samples({"a": ("7", ["x|7"])}), JudgeConfig(mode="expected_score", scores=["1", "10"]), ctx)


def _direct_next_logprobs(policy, ids, candidates):
    """One unpadded forward per prompt: the reference for the batched, left-padded one."""
    with torch.no_grad():
        lp = torch.log_softmax(policy.model(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)
    return lp[candidates]


def test_next_token_logprobs_match_an_unpadded_forward():
    policy = new_tiny_policy(0, **SMALL)
    prompts = [policy.encode_prompt(t) for t in ("7430+5200=27300?", "12*3=?", "1")]  # three lengths: left padding
    cands = [policy.encode_completion(c, eos=False)[0] for c in "yn5"]
    got = policy.next_token_logprobs(prompts, cands)
    assert got.shape == (3, 3) and not got.requires_grad
    for row, ids in zip(got, prompts):
        assert torch.allclose(row, _direct_next_logprobs(policy, ids, cands), atol=1e-5)
    assert policy.next_token_logprobs([], cands).shape == (0, 3)


def test_next_token_logprobs_of_a_lora_reference_turn_the_adapters_off():
    base = new_tiny_policy(0, **SMALL)
    prompts = [base.encode_prompt(t) for t in ("7430+5200=27300?", "12=")]
    cands = [base.encode_completion(c, eos=False)[0] for c in "yn"]
    want = base.next_token_logprobs(prompts, cands)
    lora = Policy(apply_lora(new_tiny_policy(0, **SMALL).model, 4, 8, 0.0, "all-linear", 0), base.tokenizer)
    with torch.no_grad():
        for name, p in lora.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    assert not torch.allclose(lora.next_token_logprobs(prompts, cands), want, atol=1e-3)
    assert torch.allclose(lora.reference().next_token_logprobs(prompts, cands), want, atol=1e-5)


def test_tiny_policy_judges_in_the_arithmetic_format(fake_ctx):
    policy = new_tiny_policy(0, **SMALL)
    task = make_task({"name": "arithmetic"})
    ctx = fake_ctx(policy=policy)
    ctx.task = task
    prompts = task.prompts("eval", 3)
    samples = [Sample(p, Completion(p.reference, [], [], True), 0) for p in prompts] + \
              [Sample(prompts[0], Completion("1", [], [], True), 1)]
    rated = judge(samples, JudgeConfig(batch_size=2), ctx)  # two batches, different lengths
    assert len(rated.scored) == 4 and all(0.0 <= s.reward <= 1.0 for s in rated.scored)
    y, n = policy.encode_completion("y", eos=False)[0], policy.encode_completion("n", eos=False)[0]
    for s in rated.scored:
        lp = _direct_next_logprobs(policy, policy.encode_prompt(task.judge_prompt(s.sample.prompt, s.sample.text)), [y, n])
        assert s.reward == pytest.approx(math.exp(lp[0]) / (math.exp(lp[0]) + math.exp(lp[1])), abs=1e-5)
    assert [s.correct for s in rated.scored] == [True, True, True, False]
    assert 0.0 < rated.stats["verdict_mass"] <= 1.0 and "judge_accuracy" in rated.stats


class FixedLogits(torch.nn.Module):
    """A 'model' for the fake server whose next-token distribution depends only on a word in
    the prompt: the server's top-20 log-probs are then known exactly."""

    def __init__(self, tokenizer, table):
        super().__init__()
        self.tokenizer, self.table = tokenizer, table  # word -> {char: probability}
        self.config = SimpleNamespace(max_position_embeddings=256)

    def forward(self, input_ids):
        text = self.tokenizer.decode(input_ids[0].tolist(), skip_special_tokens=True)
        probs = next(p for word, p in self.table.items() if word in text)
        vocab = len(self.tokenizer)
        filler = [i for i in range(vocab) if len(self.tokenizer.decode([i])) == 1 and self.tokenizer.decode([i]) not in probs][:30]
        p = torch.full((vocab,), 1e-9)
        rest = 1.0 - sum(probs.values())
        for c, v in probs.items():
            p[self.tokenizer.convert_tokens_to_ids(c)] = v
        p[filler] = rest / len(filler)
        return SimpleNamespace(logits=p.log().expand(1, input_ids.shape[1], vocab))


def test_openai_judge_reads_the_servers_top_logprobs(fake_ctx, make_samples):
    tok = new_tiny_policy(0, **SMALL).tokenizer
    # 'good': y 0.6, n 0.2 -> 0.75; 'bad': y 0.1, n 0.3 -> 0.25; 'lost': y and n below the
    # 30 filler tokens (each 0.032), outside the top 20 -> no verdict, 0.5
    table = {"good": {"y": 0.6, "n": 0.2}, "bad": {"y": 0.1, "n": 0.3}, "lost": {"y": 0.001, "n": 0.002}}
    requests = []
    with serve(FixedLogits(tok, table), tok, model_name="judge-model", requests=requests) as url:
        ctx = fake_ctx()
        ctx.task.judge_verdicts = (["y"], ["n"])
        ctx.task.judge_prompt = lambda p, c: f"{p.text}{c}?"
        cfg = JudgeConfig(model="openai", base_url=url, model_name="judge-model")
        rated = judge(make_samples({"q": ("good", ["good", "bad", "lost"])}), cfg, ctx)
    assert [s.reward for s in rated.scored] == pytest.approx([0.75, 0.25, 0.5], abs=1e-4)
    assert rated.stats["no_verdict"] == pytest.approx(1 / 3)
    assert rated.stats["verdict_mass"] == pytest.approx((0.8 + 0.4 + 0.0) / 3, abs=1e-4)
    assert rated.stats["judge_accuracy"] == 1.0  # 'good' is the correct one; 0.5 is not a yes
    assert sorted(r["prompt"] for r in requests) == ["q=bad?", "q=good?", "q=lost?"]
    assert all(r["max_tokens"] == 1 and r["temperature"] == 0 and r["logprobs"] == 20 for r in requests)


def test_openai_judge_unreachable_server_is_a_user_error(fake_ctx, make_samples):
    cfg = JudgeConfig(model="openai", base_url="http://127.0.0.1:9/v1", model_name="m")
    with pytest.raises(UserError, match="feedback.base_url"):
        judge(make_samples({"q": ("1", ["1"])}), cfg, fake_ctx())


def test_checkpoint_judge_is_loaded_from_its_directory(fake_ctx, make_samples, tmp_path):
    policy = new_tiny_policy(3, **SMALL)
    policy.save(tmp_path / "judge")
    ctx = fake_ctx(policy=new_tiny_policy(4, **SMALL))
    samples = make_samples({"q": ("1", ["1", "2"])})
    from_dir = judge(samples, JudgeConfig(model=str(tmp_path / "judge"), device="cpu", dtype="float32"), ctx)
    ctx_same = fake_ctx(policy=policy)
    same = judge(make_samples({"q": ("1", ["1", "2"])}), JudgeConfig(), ctx_same)
    other = judge(make_samples({"q": ("1", ["1", "2"])}), JudgeConfig(), ctx)
    assert [s.reward for s in from_dir.scored] == pytest.approx([s.reward for s in same.scored], abs=1e-6)
    assert [s.reward for s in from_dir.scored] != pytest.approx([s.reward for s in other.scored], abs=1e-6)


def test_judge_recipe_validation(tmp_path):
    rec = load_recipe({"name": "j", "task": {"name": "arithmetic"}, "policy": {"path": "seed:arithmetic"},
                       "feedback": {"kind": "judge", "model": "policy"}, "build": {"kind": "pairs", "min_margin": 0.1},
                       "objective": {"kind": "dpo", "beta": 0.1}})
    assert rec.feedback.kind == "judge" and rec.feedback.model == "policy" and rec.feedback.mode == "yes_prob"
    assert load_recipe("self_rewarding").feedback.kind == "judge"
    for overrides, field in [(["feedback.mode=sampled"], "feedback.mode"),
                             (["feedback.model=openai"], "feedback"),
                             ([f"feedback.model={tmp_path / 'nowhere'}"], "feedback"),
                             (["feedback.batch_size=0"], "feedback.batch_size")]:
        with pytest.raises(UserError) as err:
            load_recipe("self_rewarding", overrides)
        message = str(err.value)
        assert field in message and "\n" not in message, message
    with pytest.raises(UserError, match="base_url"):
        load_recipe("self_rewarding", ["feedback.model=openai"])
    with pytest.raises(UserError, match="checkpoint directory"):
        load_recipe("self_rewarding", [f"feedback.model={tmp_path / 'nowhere'}"])


# ---- the tasks' judge formats ----------------------------------------------------------

def test_arithmetic_judge_format_and_negatives():
    task = make_task({"name": "arithmetic", "ops": ["add", "sub", "mul"]})
    assert has_judge_format(task) and task.judge_verdicts == (["y"], ["n"])
    prompts = task.prompts("train", 600)
    assert task.judge_prompt(prompts[0], prompts[0].reference + "\n") == f"{prompts[0].text}{prompts[0].reference}?"
    examples = task.judge_examples(prompts, random.Random(0))
    assert len(examples) == 2 * len(prompts)
    by_text = {p.text: p for p in prompts}
    changed = []
    for (pos, yes), (neg, no) in zip(examples[0::2], examples[1::2]):
        p = by_text[pos.split("=")[0] + "="]
        assert (yes, no) == ("y", "n") and pos == task.judge_prompt(p, p.reference)
        wrong = neg[len(p.text):-1]
        answer = task.extract(wrong)
        assert answer is not None and task.score(p, answer) < 1.0  # well-formed, and wrong
        if p.meta["op"] == "mul":  # the answer reads the (wrong) scratchpad, as the model's does
            pad = wrong.split("|")[0]
            assert answer == pad[0::2] + pad[-1] and len(pad) == len(p.reference.split("|")[0])
        changed.append(sum(a != b for a, b in zip(answer, p.answer)))
    # mostly small slips: one digit off is the commonest
    assert max(set(changed), key=changed.count) == 1 and sum(c <= 3 for c in changed) / len(changed) > 0.85
    assert examples == task.judge_examples(prompts, random.Random(0))  # a function of the rng alone


def test_generic_negatives_change_the_final_number_and_score_wrong():
    task = make_task({"name": "word_problems"})
    assert not has_judge_format(task) and task.judge_verdicts[0][0] == "yes"
    prompts = task.prompts("train", 100)
    examples = task.judge_examples(prompts, random.Random(1))
    assert len(examples) == 200 and {v for _, v in examples} == {"yes", "no"}
    for p, (neg, no) in zip(prompts, examples[1::2]):
        wrong = neg.split("Proposed answer:\n", 1)[1].rsplit("\n\nIs the proposed", 1)[0]
        assert no == "no" and wrong != p.reference and task.score(p, task.extract(wrong)) < 1.0


def test_other_tasks_inherit_the_generic_format():
    code = make_task({"name": "code"})
    assert not has_judge_format(code)
    p = code.prompts("eval", 1)[0]
    assert code.judge_prompt(p, "x+1").endswith("Reply yes or no.")
