"""Any reasoning-gym dataset as a Task, scored by the dataset's own `score_answer`.

Each split is a finite pool: the first `<split>_size` distinct questions of a stream of
reasoning-gym entries drawn with a seed of its own, keeping only the questions that the
stable hash of (seed, question) puts in that split. So the splits are disjoint even when
a dataset repeats questions, and deterministic as far as the dataset's generator is.

The prompt is the entry's question plus `prompt_suffix`, asking the model to end with
"Answer: <answer>"; `extract` takes the rest of the line after the last "Answer:" or,
if there is none, the last non-empty line (both stripped). That text goes to
`score_answer(answer, entry)` unchanged, since several datasets give partial credit.
"""
from __future__ import annotations

import dataclasses
import difflib
import itertools
from typing import Any, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field

from sharpen.errors import UserError
from sharpen.registry import TASKS
from sharpen.tasks.base import PoolTask, final_answer
from sharpen.tasks.splits import derive_seed, take_split
from sharpen.types import Prompt

CHUNK = 1000  # entries per reasoning-gym dataset instance in a split's stream
LIST_HINT = "python -c 'import reasoning_gym; print(sorted(reasoning_gym.factory.DATASETS))'"


class ReasoningGymConfig(BaseModel):
    """Knobs of a reasoning-gym task."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: Literal["reasoning_gym"] = "reasoning_gym"
    dataset: str
    """A reasoning-gym dataset name, e.g. basic_arithmetic or leg_counting."""
    config: dict[str, Any] = {}
    """The dataset's own config fields, passed to reasoning_gym.create_dataset (not seed/size)."""
    train_size: int = Field(5000, ge=1)
    """Distinct problems in the train pool; each round draws its prompts from it."""
    eval_size: int = Field(500, ge=1)
    """Distinct problems in the eval split."""
    holdout_size: int = Field(500, ge=1)
    """Distinct problems in the holdout split."""
    prompt_suffix: str = "\n\nEnd your reply with a final line of the form: Answer: <answer>"
    """Appended to every question so the answer can be found."""
    answer_prefix: str | None = "Answer:"
    """The answer is the rest of the line after its last occurrence; without it, the last line."""
    seed: int = 0
    """Seeds the split hash and every split's reasoning-gym stream."""


def create_dataset(dataset: str, seed: int, size: int, config: dict[str, Any]) -> Any:
    """`reasoning_gym.create_dataset`, with a user's mistakes turned into one-line UserErrors."""
    import reasoning_gym  # imported here: it takes ~0.8 s and most runs never need it
    from reasoning_gym.factory import DATASETS

    if dataset not in DATASETS:
        close = difflib.get_close_matches(dataset, DATASETS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"task.dataset: unknown reasoning-gym dataset {dataset!r}{hint}; list them with: {LIST_HINT}")
    for reserved in ("seed", "size"):
        if reserved in config:
            raise UserError(f"task.config.{reserved}: set by sharpen; use task.seed and task.<split>_size instead")
    fields = sorted(f.name for f in dataclasses.fields(DATASETS[dataset][1]) if f.name not in ("seed", "size"))
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise UserError(f"task.config.{unknown[0]}: not a field of {dataset!r} (fields: {', '.join(fields)})")
    try:
        return reasoning_gym.create_dataset(dataset, seed=seed, size=size, **config)
    except (AssertionError, ValueError, TypeError) as err:  # the dataset config's validate()
        raise UserError(f"task.config: {dataset!r} rejects it: {err or type(err).__name__}") from None


class ReasoningGymTask(PoolTask):
    """A reasoning-gym dataset with disjoint finite splits and the dataset's own scorer."""

    name = "reasoning_gym"

    def __init__(self, cfg: ReasoningGymConfig) -> None:
        self.cfg = cfg
        self.seed = cfg.seed
        self.scorer = create_dataset(cfg.dataset, cfg.seed, 1, cfg.config)  # fails fast on a bad config
        self.sizes = {"train": cfg.train_size, "eval": cfg.eval_size, "holdout": cfg.holdout_size}
        self._pools: dict[str, list[Prompt]] = {}

    def entries(self, split: str) -> Iterator[dict[str, Any]]:
        """An endless stream of entries for `split`, in chunks with seeds of their own."""
        failures = 0
        for c in itertools.count():
            ds = create_dataset(self.cfg.dataset, derive_seed(self.seed, self.cfg.dataset, split, c), CHUNK, self.cfg.config)
            for i in range(CHUNK):
                try:
                    entry = ds[i]
                except Exception as err:  # some generators crash on rare seeds (basic_arithmetic: 1/0)
                    failures += 1
                    if failures >= 100:
                        raise UserError(f"task.config: {self.cfg.dataset!r} fails to generate problems "
                                        f"({type(err).__name__}: {err}); change task.config") from None
                    continue
                failures = 0
                yield entry

    def pool(self, split: str) -> list[Prompt]:
        if split not in self._pools:  # built on first use: big pools of slow datasets cost seconds
            size = self.sizes[split]
            found = take_split(self.entries(split), lambda e: e["question"], split, self.seed, size)
            if len(found) < size:
                raise UserError(
                    f"task.{split}_size: {self.cfg.dataset!r} gave only {len(found)} distinct {split} questions "
                    f"under this config; lower task.{split}_size or widen task.config"
                )
            self._pools[split] = [self._prompt(split, i, e) for i, e in enumerate(found)]
        return self._pools[split]

    def _prompt(self, split: str, i: int, entry: dict[str, Any]) -> Prompt:
        answer = None if entry.get("answer") is None else str(entry["answer"])
        prefix = self.cfg.answer_prefix
        reference = None if answer is None else (f"{prefix} {answer}" if prefix else answer)
        return Prompt(
            id=f"{self.cfg.dataset}:{split}:{i}",
            text=entry["question"] + self.cfg.prompt_suffix,
            answer=answer,
            reference=reference,
            meta={"dataset": self.cfg.dataset, "entry": entry},
        )

    def extract(self, completion: str) -> str | None:
        """Rest of the line after the last `answer_prefix`, else the last non-empty line."""
        return final_answer(completion, self.cfg.answer_prefix)

    def score(self, prompt: Prompt, answer: str | None) -> float:
        """The dataset's own `score_answer(answer, entry)`, clipped to [0, 1]."""
        if answer is None:
            return 0.0
        try:
            reward = float(self.scorer.score_answer(answer, prompt.meta["entry"]))
        except Exception:  # third-party scorers fed arbitrary model text: a crash means unreadable
            return 0.0
        return min(1.0, max(0.0, reward))


@TASKS.register("reasoning_gym", ReasoningGymConfig)
def reasoning_gym(cfg: ReasoningGymConfig) -> ReasoningGymTask:
    """Any reasoning-gym dataset, scored by the dataset's own score_answer."""
    return ReasoningGymTask(cfg)
