"""A user's own problems from a JSONL file, one object a line:

    {"prompt": "How many legs do 3 spiders have?", "answer": "24", "split": "eval"}

`split` (train | eval | holdout) is optional: rows without it are placed by the same
stable hash of (seed, prompt) as every other task, so a prompt always lands in one
split. `reference` (a gold completion) is optional too; without it the gold completion
is "<answer_prefix> <answer>", which `extract` reads back as the answer. Extra fields
are kept in `Prompt.meta`.

`match` says when an answer is right: `exact` (string equality after stripping),
`numeric` (the last number in the answer equals the gold number, so "1,000", "1000.0"
and " 1000 " all match 1000), or `math` (math-verify's `parse` + `verify`, which
knows 1/2 == 0.5 == \\frac{1}{2}).
"""
from __future__ import annotations

import functools
import re
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict

from sharpen.errors import UserError, read_user_text
from sharpen.registry import TASKS
from sharpen.tasks.base import PoolTask, final_answer, json_object
from sharpen.tasks.splits import split_of
from sharpen.types import SPLITS, Prompt

Match = Literal["exact", "numeric", "math"]
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|[-+]?\.\d+")
_FIELDS = ("prompt", "answer", "split", "reference")


class JSONLConfig(BaseModel):
    """Knobs of the JSONL task."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: Literal["jsonl"] = "jsonl"
    path: str
    """The JSONL file: one {"prompt", "answer", "split"?, "reference"?} object per line."""
    match: Match = "exact"
    """exact | numeric (formatting-tolerant numbers) | math (math-verify equivalence)."""
    answer_prefix: str | None = "Answer:"
    """The answer is the rest of the line after its last occurrence; without it, the last line."""
    seed: int = 0
    """Seeds the split hash for rows without `split` and the per-round train draws."""


def parse_number(text: str) -> Decimal | None:
    """The last number written in `text` ("1,000" -> 1000, "x = 4.50." -> 4.50), or None."""
    found = _NUMBER.findall(text)
    return Decimal(found[-1].replace(",", "")) if found else None


def match_exact(answer: str, gold: str) -> bool:
    return answer.strip() == gold.strip()


def match_numeric(answer: str, gold: str) -> bool:
    value = parse_number(answer)
    return value is not None and value == parse_number(gold)


@functools.lru_cache(maxsize=65536)
def _math_parse(text: str) -> list[Any]:
    """math-verify's parse, retried inside $...$ (bare "x+1" is only read as LaTeX)."""
    from math_verify import parse

    # math-verify times out with signal.alarm, which only works on the main thread.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    parsed = parse(text, parsing_timeout=timeout)
    return parsed or parse(f"${text}$", parsing_timeout=timeout)


def match_math(answer: str, gold: str) -> bool:
    from math_verify import verify

    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    pred, ref = _math_parse(answer), _math_parse(gold)
    return bool(pred and ref) and verify(ref, pred, timeout_seconds=timeout)


MATCHERS: dict[str, Callable[[str, str], bool]] = {"exact": match_exact, "numeric": match_numeric, "math": match_math}


def _gold_answer(value: Any, where: str, match: str) -> str:
    """The gold answer as text, checked to be readable under `match`."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UserError(f"{where}: field 'answer' must be a string or number, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise UserError(f"{where}: field 'answer' is empty; give the gold answer")
    if match == "numeric" and not _NUMBER.fullmatch(text):
        raise UserError(f"{where}: answer {text!r} is not a number; fix it or use task.match: exact")
    if match == "math" and all(isinstance(x, str) for x in _math_parse(text)):  # only a raw-string fallback
        raise UserError(f"{where}: math-verify cannot parse answer {text!r}; fix it or use task.match: exact")
    return text


def parse_row(line: str, path: Path, k: int, cfg: JSONLConfig) -> tuple[str, Prompt]:
    """Line `k` of `path`, checked, as (split, prompt); errors name "file:line"."""
    where = f"{path}:{k}"
    row = json_object(line, where, '{"prompt": ..., "answer": ...}')
    for name in ("prompt", "answer"):
        if name not in row:
            raise UserError(f"{where}: missing field {name!r}; every line needs 'prompt' and 'answer'")
    text = row["prompt"]
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{where}: field 'prompt' must be a non-empty string, got {text!r:.40}")
    answer = _gold_answer(row["answer"], where, cfg.match)
    reference = row.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise UserError(f"{where}: field 'reference' must be a string, got {type(reference).__name__}")
    if reference is None:  # a gold completion that `extract` reads back as the answer
        reference = f"{cfg.answer_prefix} {answer}" if cfg.answer_prefix else answer
    split = row.get("split")
    if split is None:
        split = split_of(text.strip(), cfg.seed)
    elif split not in SPLITS:
        raise UserError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}; fix it or drop it to hash-assign")
    extra = {key: v for key, v in row.items() if key not in _FIELDS}
    prompt = Prompt(id=f"{path.stem}:{k}", text=text, answer=answer, reference=reference,
                    meta={"line": k, **extra})
    return split, prompt


def load_rows(path: str | Path, cfg: JSONLConfig) -> dict[str, list[Prompt]]:
    """Read and check every line, then place each row in its split (file order kept)."""
    path = Path(path)
    lines = read_user_text(path, "file", "fix the path", field="task.path").splitlines()
    pools: dict[str, list[Prompt]] = {s: [] for s in SPLITS}
    first_seen: dict[str, tuple[int, str]] = {}  # prompt -> (line, split): a problem lives in one split
    for k, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        split, prompt = parse_row(line, path, k, cfg)
        seen = first_seen.setdefault(prompt.text.strip(), (k, split))
        if seen[1] != split:
            raise UserError(f"{path}:{k}: this prompt is also on line {seen[0]} in split {seen[1]!r}; "
                            "a problem must be in one split")
        pools[split].append(prompt)
    if not first_seen:
        raise UserError(f'{path}: file is empty; add one {{"prompt": ..., "answer": ...}} object per line')
    return pools


class JSONLTask(PoolTask):
    """Problems from a file, scored by exact, numeric or math-verify match."""

    name = "jsonl"

    def __init__(self, cfg: JSONLConfig) -> None:
        self.cfg = cfg
        self.seed = cfg.seed
        self.pools = load_rows(cfg.path, cfg)
        self._match = MATCHERS[cfg.match]

    def pool(self, split: str) -> list[Prompt]:
        return self.pools[split]

    def extract(self, completion: str) -> str | None:
        """Rest of the line after the last `answer_prefix`, else the last non-empty line."""
        return final_answer(completion, self.cfg.answer_prefix)

    def score(self, prompt: Prompt, answer: str | None) -> float:
        if answer is None or prompt.answer is None:
            return 0.0
        return 1.0 if self._match(answer, prompt.answer) else 0.0


@TASKS.register("jsonl", JSONLConfig)
def jsonl(cfg: JSONLConfig) -> JSONLTask:
    """Your own prompts and answers from a JSONL file (exact, numeric or math match)."""
    return JSONLTask(cfg)
