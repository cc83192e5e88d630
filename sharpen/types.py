"""The small shared types every part speaks: parts import these and nothing of each other.

Flow of one round: Task -> `Prompt`s -> Engine.generate -> `Sample`s -> Feedback -> `Scored`s
-> Builder -> `SFTExample` | `PreferencePair` | `RLGroup` -> Objective.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Literal, Protocol, Sequence, TypeVar, runtime_checkable

Split = Literal["train", "eval", "holdout"]
SPLITS: tuple[str, ...] = ("train", "eval", "holdout")
T = TypeVar("T")


@dataclass(frozen=True)
class Prompt:
    """One problem. `text` is exactly what the policy is conditioned on.

    `answer` is the gold final answer (what `Task.score` compares against) and
    `reference` the gold *completion* (scratchpad + answer, as the model should write
    it): seeding, SPIN's chosen side and the supervised control train on it.
    """

    id: str
    text: str
    answer: str | None = None
    reference: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Completion:
    """One sampled continuation of a prompt, as the sampler returns it.

    `logprobs[i]` is log pi(token_ids[i] | prefix) under the *sampling* distribution
    (logits / temperature, before top-p truncation), the same quantity TRL's GRPO uses
    for pi_old. `token_ids` include the end-of-sequence token when `finished`.
    """

    text: str
    token_ids: list[int]
    logprobs: list[float]
    finished: bool


@dataclass
class Sample:
    """A completion tied to its prompt (the unit feedback scores)."""

    prompt: Prompt
    completion: Completion
    index: int = 0  # which of the n samples of this prompt

    @property
    def text(self) -> str:
        return self.completion.text


@dataclass
class Scored:
    """A sample with the reward the recipe's feedback gave it.

    `reward` is what builders use. `correct` is ground truth when the task has it (kept
    even when the recipe trains on a label-free reward, so monitors can measure reward
    precision and reward hacking). `scores` holds every named signal for samples.jsonl.
    """

    sample: Sample
    reward: float
    correct: bool | None = None
    answer: str | None = None
    scores: dict[str, float] = field(default_factory=dict)


def group_by_prompt(items: Iterable[T], key: Callable[[T], str] = lambda s: s.sample.prompt.id) -> dict[str, list[T]]:
    """prompt id (`key`, a Scored's by default) -> its items as given, prompts in first-seen order: deterministic."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


@dataclass(frozen=True)
class SFTExample:
    """Train log p(completion | prompt) on completion tokens only."""

    prompt: str
    completion: str
    weight: float = 1.0


@dataclass(frozen=True)
class PreferencePair:
    """chosen > rejected for one prompt; `margin` is their reward gap. `confidence` in [0, 1]
    is how far the preference is trusted (CREAM): DPO trains it with label smoothing 1 - confidence."""

    prompt: str
    chosen: str
    rejected: str
    margin: float = 0.0
    confidence: float = 1.0


@dataclass
class RLGroup:
    """The G samples of one prompt with their advantages (one per sample).

    `old_logprobs[i]` are the sampler's per-token log-probs for completion i (pi_old).
    """

    prompt: str
    completions: list[str]
    rewards: list[float]
    advantages: list[float]
    old_logprobs: list[list[float]]
    completion_ids: list[list[int]]


@dataclass
class Rated:
    """A feedback's output: the scored samples plus its own statistics for metrics.json
    (`feedback` block), e.g. a vote's pseudo-label accuracy and agreement rate. A feedback
    may also return a bare list of `Scored` (no statistics)."""

    scored: list[Scored]
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Built:
    """A builder's output: training data plus counts for metrics.json (`train` block)."""

    data: list[Any]
    stats: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Task(Protocol):
    """Prompts from deterministic, disjoint splits plus one scoring function."""

    name: str

    def prompts(self, split: str, n: int, round: int = 0) -> list[Prompt]:
        """`n` prompts of `split`. `train` draws a fresh deterministic batch per round;
        `eval`/`holdout` return the same fixed first-n problems whatever the round."""
        ...

    def extract(self, completion: str) -> str | None:
        """The final answer in a completion, or None if it is malformed."""
        ...

    def score(self, prompt: Prompt, answer: str | None) -> float:
        """Reward in [0, 1] for an extracted answer (0 for None)."""
        ...

    def score_batch(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> list[float]:
        """Score many completions at once (extract + score); code tasks batch sandbox runs."""
        ...


class ProgressFactory(Protocol):
    """`with ctx.progress("sampling", total) as advance: advance(k)` draws a progress bar."""

    def __call__(self, description: str, total: int) -> Any: ...


@dataclass(frozen=True)
class SamplingParams:
    """How an engine samples: the same four knobs for every backend.

    temperature 0 is greedy. Log-probs returned with each token are under
    log_softmax(logits / temperature) before top-p truncation (see `Completion`).
    """

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 32


@runtime_checkable
class PolicyModel(Protocol):
    """The trainable model as every part sees it: tokens in, differentiable log-probs out.

    Parts call these methods and never `policy.model` (the transformers/PEFT module is an
    implementation detail of `sharpen.policy`). Prompts are the task's raw text; the policy
    applies its prompt format (chat template or raw) in `encode_prompts`.
    """

    version: int  # bumped by every optimizer step; engines compare it in `sync`

    def encode_prompts(self, texts: Sequence[str]) -> list[list[int]]: ...
    def encode_completion(self, text: str, eos: bool = True) -> list[int]: ...
    def decode_many(self, batch: Sequence[Sequence[int]]) -> list[str]: ...

    @property
    def stop_ids(self) -> tuple[int, ...]: ...

    def token_logprobs(self, prompt_ids: list[list[int]], completion_ids: list[list[int]],
                       temperature: float = 1.0) -> tuple[Any, Any]:
        """(log p(token | prefix) [B, L], mask [B, L]) as torch tensors; differentiable under grad."""
        ...

    def trainable_parameters(self) -> list[Any]: ...
    def train_mode(self) -> Any:
        """Context manager: train mode (dropout on) inside, eval mode after."""
        ...

    def stepped(self) -> None:
        """Record a weight change (a new `version`)."""
        ...

    # What engines read to load and sync the weights.
    device: Any  # torch.device
    dtype: Any  # torch.dtype of the forward (bfloat16 or float32)
    source_dir: Any  # Path of the base HF directory (what vLLM loads at start)
    is_lora: bool
    lora_rank: int | None
    pad_id: int

    def export_weights(self) -> Iterator[tuple[str, Any]]:
        """(name, tensor) of the merged weights under the base checkpoint's names."""
        ...

    def merged_state_dict(self) -> dict[str, Any]: ...
    def vocab_size(self) -> int: ...

    def vocab_mean_logprobs(self, prompt_ids: list[list[int]], completion_ids: list[list[int]]) -> tuple[Any, Any]:
        """(mean_j log p(j | prefix) [B, L], mask [B, L]): what self-certainty needs, no grad."""
        ...

    def next_token_logprobs(self, prompt_ids: list[list[int]], candidates: Sequence[int]) -> Any:
        """log p(candidate | prompt) [B, len(candidates)] at the first completion position, no
        grad: a judge's verdict distribution read from one forward."""
        ...

    def plain_model(self, dtype: Any = None, device: Any = None) -> Any: ...
    def save_adapter(self, dir: Any) -> None: ...
    def max_positions(self) -> int | None: ...
    def check_length(self, tokens: int, what: str) -> None: ...


@runtime_checkable
class Engine(Protocol):
    """What samples rollouts: the built-in sampler, vLLM, or an OpenAI-compatible server.

    `generate` returns, per prompt, `params.n` completions with per-token log-probs.
    `seeds[i]` alone decides prompt i's random draws (sample j uses the stream
    (seeds[i], j)), so results never depend on batch composition or sharding.
    `sync(policy)` makes the engine sample the policy's current weights; the loop checks
    it after every sync (`sharpen.engines.sync_check`), so a stale engine is an error.
    """

    name: str
    # False for an engine that samples someone else's weights (an OpenAI-compatible server
    # the run does not train): the loop then skips the sync check, and GRPO recomputes
    # pi_old with the trainer instead of trusting the engine's log-probs.
    syncs_weights: bool

    def generate(self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int],
                 progress: Callable[[int], None] | None = None) -> list[list[Completion]]: ...

    def sync(self, policy: PolicyModel) -> None: ...

    def sleep(self) -> None:
        """Free the device while the trainer runs (vLLM's sleep mode on GPU); the next
        `sync` or `generate` wakes it. A no-op where there is nothing to free."""
        ...

    def close(self) -> None: ...


@dataclass
class Context:
    """What the loop hands every part call, so parts never import the loop.

    `policy` is the trainable `PolicyModel`; `engine` samples (feedback that needs fresh
    samples, e.g. a judge, calls `engine.generate`). `reference(which)` returns a frozen
    policy: "base" (the run's starting checkpoint) or "last" (the policy as it was at the
    start of this round) or "previous" (the policy at the start of the previous round:
    CREAM's last-iteration ranking).
    """

    task: Task
    policy: PolicyModel
    round: int
    seed: int
    reference: Callable[[str], PolicyModel]
    progress: ProgressFactory
    threads: int = 1
    engine: Engine | None = None
    # how the round sampled (feedback that draws more samples, e.g. extra votes, matches it)
    sampling: SamplingParams | None = None
    # the initial model's scored samples of this round's prompts, by prompt id, for builders
    # that anchor to them (Temporal Self-Rewarding); None unless the builder asks for them
    anchor: dict[str, list[Scored]] | None = None
    # called by the trainer after every optimizer step with {loss, lr, grad_norm, ...}
    # (experiment tracking); None when the run tracks nothing
    on_step: Callable[[dict[str, float]], None] | None = None
