import dataclasses

import torch
import torch.nn.functional as F

from sharpen.feedback.co_vote import CoVoteConfig, co_vote
from sharpen.objectives.dpo import dpo_loss
from sharpen.types import Completion, SamplingParams

from tests.feedback.conftest import FakeTask


class ParaphrasingTask(FakeTask):
    """Prompt 'a' has a paraphrase 'a2'; 'b' has none (falls back to its own vote)."""

    def paraphrase(self, prompt):
        return dataclasses.replace(prompt, id="a2", text="a2=") if prompt.id == "a" else None


class Engine:
    def __init__(self, answers):
        self.answers = answers

    def generate(self, prompts, params, seeds, progress=None):
        return [[Completion(f"|{x}", [], [], True) for x in self.answers[p]][: params.n] for p in prompts]


def test_labels_come_from_the_paraphrases_majority(fake_ctx, make_samples):
    samples = make_samples({"a": ("7", ["|5", "|5", "|7"]), "b": ("4", ["|4", "|4", "|3"])})
    ctx = fake_ctx()
    ctx.task = ParaphrasingTask()
    ctx.engine = Engine({"a2=": ["7", "7", "5"]})
    ctx.sampling = SamplingParams(n=3, temperature=0.8)
    rated = co_vote(samples, CoVoteConfig(), ctx)
    # a's own majority (5) is wrong, its paraphrase's (7) is right and is the label; b uses its own
    assert [s.reward for s in rated.scored] == [0, 0, 1, 1, 1, 0]
    st = rated.stats
    assert st["paraphrased"] == 0.5 and st["cross_agreement"] == 0.0 and st["label_accuracy"] == 1.0


class ManyParaphrasesTask(FakeTask):
    """'a' has three equivalent questions a1..a3; 'b' has none."""

    def paraphrases(self, prompt, k):
        return [dataclasses.replace(prompt, id=f"a{i}", text=f"a{i}=") for i in (1, 2, 3)][:k] if prompt.id == "a" else []


class RecordingEngine(Engine):
    def __init__(self, answers):
        super().__init__(answers)
        self.params = []

    def generate(self, prompts, params, seeds, progress=None):
        self.params.append(params)
        return super().generate(prompts, params, seeds, progress)


def test_paraphrases_votes_are_pooled_and_greedy_votes_once(fake_ctx, make_samples):
    samples = make_samples({"a": ("7", ["|5", "|5", "|7"]), "b": ("4", ["|4", "|4", "|3"])})
    ctx = fake_ctx()
    ctx.task = ManyParaphrasesTask()
    # greedy answers: a1 says 7, a2 says 9, a3 says 7 -> the pooled label is 7 (2 of 3)
    ctx.engine = RecordingEngine({"a1=": ["7", "5"], "a2=": ["9", "5"], "a3=": ["7", "5"]})
    ctx.sampling = SamplingParams(n=3, temperature=0.8)
    rated = co_vote(samples, CoVoteConfig(n_paraphrases=3, temperature=0), ctx)
    assert [s.reward for s in rated.scored] == [0, 0, 1, 1, 1, 0]
    (params,) = ctx.engine.params
    assert params.n == 1 and params.temperature == 0  # one greedy answer per equivalent question
    assert rated.stats["paraphrases"] == 3.0 and rated.stats["label_accuracy"] == 1.0
    # with 2 of 3 votes below a 0.7 bar, a is unlabelled; b's own majority (2 of 3) is too
    rated = co_vote(samples, CoVoteConfig(n_paraphrases=3, temperature=0, min_agreement=0.7), ctx)
    assert [s.reward for s in rated.scored] == [0] * 6 and rated.stats["no_label_rate"] == 1.0
    # k caps the questions asked
    rated = co_vote(samples, CoVoteConfig(n_paraphrases=2, temperature=0), ctx)
    assert rated.stats["paraphrases"] == 2.0


def test_cream_smoothing_is_confidence_weighted_dpo_both_ways():
    pc, pr, rc, rr = (torch.tensor([v]) for v in (-1.0, -2.0, -1.5, -1.5))
    conf = 0.7
    losses, _, _ = dpo_loss(pc, pr, rc, rr, beta=0.5, label_smoothing=torch.tensor([1 - conf]))
    h = 0.5 * ((-1.0 + 1.5) - (-2.0 + 1.5))
    expected = -conf * F.logsigmoid(torch.tensor(h)) - (1 - conf) * F.logsigmoid(torch.tensor(-h))
    assert torch.allclose(losses, expected.reshape(1))
