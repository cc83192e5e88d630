"""Recipes: YAML files validated by pydantic, with `key=value` overrides.

A recipe names one choice per part (task, feedback, build, objective) by `kind`/`name`;
each part's knobs are validated by the pydantic model it registered, so a typo or a bad
value fails here, before any compute, with one line naming the field and the fix.
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any, Literal, get_type_hints

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sharpen.builders.base import BuildConfig
from sharpen.errors import UserError
from sharpen.monitor.adaptive import AdaptConfig
from sharpen.objectives.trainer import TrainConfig
from sharpen.registry import BUILDERS, FEEDBACK, OBJECTIVES, TASKS, Registry


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoRAConfig(_Strict):
    """Low-rank adapters through PEFT: the base stays frozen and is the reference model."""

    r: int = Field(16, gt=0, description="adapter rank")
    alpha: float = Field(32.0, gt=0, description="scale: the update is B A * alpha / r")
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | str = Field("all-linear", description="PEFT target_modules: 'all-linear' or module names")


class PolicyConfig(_Strict):
    path: str = Field("seed:arithmetic", description="'seed:<task>' (the built-in tiny model, seeded on that task), a local Hugging Face model directory, or a .gguf file")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="compute dtype; auto: bfloat16 where the device has bf16 units and the model has >= 50M parameters")
    prompt_format: Literal["auto", "chat", "raw"] = Field(
        "auto", description="auto: the tokenizer's chat template when it has one, else the raw prompt text")
    system_prompt: str | None = Field(None, description="a system turn before each prompt (chat format only)")
    lora: LoRAConfig | None = Field(None, description="train LoRA adapters instead of every weight")
    gradient_checkpointing: bool = Field(False, description="recompute activations in the backward (less memory, ~30% slower)")


class EngineConfig(_Strict):
    """What samples rollouts and evaluations (`sharpen.engines`)."""

    kind: Literal["hf", "vllm", "openai"] = Field("hf", description="hf: built-in sampler; vllm: vLLM's in-process LLM; openai: an OpenAI-compatible server")
    sync_tolerance: float | None = Field(
        None, gt=0, description="max mean |engine - trainer| log-prob gap after a sync (default: 1e-3 in float32, 0.1 in bf16)")
    sync_probe: int = Field(8, ge=0, description="train prompts sampled (one sample each) for the sync check; 0 turns it off")
    gpu_memory_utilization: float = Field(0.5, gt=0, le=1, description="vllm on GPU: share of GPU memory for weights + KV cache")
    kv_cache_gb: float = Field(2.0, gt=0, description="vllm on CPU: KV cache size (VLLM_CPU_KVCACHE_SPACE)")
    max_model_len: int | None = Field(None, gt=0, description="vllm: context length (default: the model's)")
    lora_adapters: bool | None = Field(
        None, description="vllm: sync a LoRA policy as an adapter (default on GPU) or as merged weights (default on CPU, 5x faster there)")
    vllm_args: dict[str, Any] = Field(default_factory=dict, description="vllm: extra keyword arguments for vllm.LLM")
    base_url: str | None = Field(None, description="openai: the server, e.g. http://127.0.0.1:8000/v1")
    model: str | None = Field(None, description="openai: the served model's name")
    api_key: str | None = Field(None, description="openai: API key (default: $OPENAI_API_KEY or 'EMPTY')")
    timeout: float = Field(60.0, gt=0, description="openai: seconds per request")

    @model_validator(mode="after")
    def _openai_needs_server(self) -> "EngineConfig":
        if self.kind == "openai" and (not self.base_url or not self.model):
            raise ValueError("engine openai needs engine.base_url and engine.model")
        return self


class SampleConfig(_Strict):
    n: int = Field(8, gt=0, description="samples per training prompt")
    temperature: float = Field(0.8, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(32, gt=0)
    prompts_per_round: int = Field(512, gt=0, description="training prompts sampled each round")
    batch_size: int = Field(64, gt=0, description="prompts per sampling batch")
    split: Literal["train", "eval", "holdout"] = Field(
        "train", description="questions sampled and trained on; eval or holdout: test-time training on those questions "
                             "without their labels (TTRL), label-free feedback only; the other split stays unseen")


class EvalConfig(_Strict):
    splits: list[Literal["train", "eval", "holdout"]] = Field(default_factory=lambda: ["eval", "holdout"])
    n: int = Field(500, gt=0, description="prompts evaluated per split")
    k: int = Field(8, ge=0, description="samples per prompt for pass@k and majority vote (0: greedy only)")
    temperature: float = Field(0.8, ge=0.0)
    max_new_tokens: int = Field(32, gt=0)


class RunConfig(_Strict):
    seed: int = Field(0, description="seeds the seed model, every round's prompts, sampling and data order")
    out: str | None = Field(None, description="run directory (default runs/<name>-<time>)")
    threads: int | None = Field(None, gt=0, description="torch threads (default: 1 for the tiny model, all cores otherwise)")
    samples: Literal["jsonl", "gzip", "none"] = Field(
        "jsonl", description="each round's samples: samples.jsonl, samples.jsonl.gz (big rounds), or not kept")


class RayConfig(_Strict):
    """Where `executor: ray` runs its workers (`sharpen.executors.ray_executor`)."""

    address: str | None = Field(None, description="a running cluster to join (ray://host:10001 or auto); null starts a local one")
    num_workers: int = Field(2, gt=0, description="actors, each holding an engine replica and the task's scorer")
    resources_per_worker: dict[str, float] = Field(
        default_factory=lambda: {"CPU": 1.0}, description="Ray resources each actor reserves, e.g. {CPU: 1, GPU: 1}")

    @field_validator("resources_per_worker")
    @classmethod
    def _non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, x in v.items() if x < 0]
        if bad:
            raise ValueError(f"{bad[0]} must be >= 0")
        return v


class Recipe(_Strict):
    """One self-improvement method: the parts it uses and their knobs."""

    name: str
    description: str = ""
    paper: str = ""
    task: Any
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    rounds: int = Field(3, gt=0)
    sample: SampleConfig = Field(default_factory=SampleConfig)
    feedback: Any = "verifier"
    build: Any
    objective: Any
    eval: EvalConfig = Field(default_factory=EvalConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    monitors: list[Any] = Field(default_factory=list, description="monitors and guards, merged by kind into the default set "
                                "(sharpen.monitor.watch.DEFAULT_MONITORS), e.g. [{kind: forgetting, anchor: {...}}]")
    adapt: AdaptConfig | None = Field(None, description="adaptive knobs chosen before each round (B-STaR: temperature and threshold)")
    tracking: Literal["none", "tensorboard"] = Field("none", description="tensorboard: event files of every metric in <run>/tb/")
    executor: Literal["local", "ray"] = Field("local", description="local: one process; ray: sampling, code scoring and evaluation sharded over Ray actors")
    ray: RayConfig = Field(default_factory=RayConfig)

    def resolved(self) -> dict[str, Any]:
        """The fully resolved recipe (every default filled in) for config.yaml."""
        out = self.model_dump(mode="json")
        for part in ("task", "feedback", "build", "objective"):
            val = getattr(self, part)
            out[part] = val.model_dump(mode="json") if isinstance(val, BaseModel) else val
        out["monitors"] = [m.model_dump(mode="json") if isinstance(m, BaseModel) else m for m in self.monitors]
        return out


PARTS: dict[str, tuple[Registry, str]] = {
    "task": (TASKS, "name"),
    "feedback": (FEEDBACK, "kind"),
    "build": (BUILDERS, "kind"),
    "objective": (OBJECTIVES, "kind"),
}


def builtin_recipes() -> dict[str, Path]:
    """Recipe name -> path of the YAML files shipped in sharpen/recipes/."""
    root = Path(str(importlib.resources.files("sharpen") / "recipes"))
    return {p.stem: p for p in sorted(root.glob("*.yaml"))}


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(x) for x in loc if not str(x).startswith("function-"))


def _one_line(source: str, prefix: str, err: ValidationError) -> UserError:
    e = err.errors()[0]
    field = ".".join(p for p in (prefix, _where(e["loc"])) if p)
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling; `sharpen recipes --keys` lists the knobs)"
    elif e["type"] == "missing":
        msg = "missing: add it to the recipe or pass " + f"{field}=..."
    elif "input" in e and not isinstance(e["input"], (dict, list)):
        msg += f" (got {e['input']!r})"
    return UserError(f"{source}: {field}: {msg}", field=field, detail=msg)


def _validate_part(source: str, part: str, value: Any) -> BaseModel:
    registry, key = PARTS[part]
    if isinstance(value, str):
        value = {key: value}
    if not isinstance(value, dict):
        raise UserError(f"{source}: {part}: expected a mapping with `{key}:` (got {value!r})")
    name = value.get(key)
    if name is None:
        detail = f"missing; one of {', '.join(registry.names())}"
        raise UserError(f"{source}: {part}.{key}: {detail}", field=f"{part}.{key}", detail=detail)
    try:
        entry = registry.get(str(name))
    except KeyError:
        detail = f"unknown {registry.part} {name!r}; one of {', '.join(registry.names())}"
        raise UserError(f"{source}: {part}.{key}: {detail}", field=f"{part}.{key}", detail=detail) from None
    try:
        return entry.config.model_validate(value)
    except ValidationError as err:
        raise _one_line(source, part, err) from None


def parse_value(text: str) -> Any:
    """An override's value is YAML: `4`, `0.8`, `[1, 3]`, `base`, `null`."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides to a raw recipe mapping (in place)."""
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r}: expected key=value, e.g. rounds=1 or sample.n=4")
        key, _, raw = item.partition("=")
        parts = key.strip().split(".")
        if not all(parts):
            raise UserError(f"override {item!r}: empty key segment")
        node = data
        for p in parts[:-1]:
            cur = node.get(p)
            if isinstance(cur, str) and p in PARTS:
                cur = {PARTS[p][1]: cur}
            if cur is None:
                cur = {}
            if not isinstance(cur, dict):
                raise UserError(f"override {item!r}: {p} is not a section")
            node[p] = cur
            node = cur
        node[parts[-1]] = parse_value(raw)
    return data


def read_recipe_file(ref: str) -> tuple[str, dict[str, Any]]:
    """Resolve a built-in name or a YAML path to (source label, raw mapping)."""
    builtins = builtin_recipes()
    path = builtins.get(ref) or Path(ref)
    if not path.exists():
        raise UserError(f"recipe {ref!r}: no such file or built-in recipe; built-ins: {', '.join(builtins)}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read recipe ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a recipe is a YAML mapping (name:, task:, build:, objective:, ...)")
    return str(path), data


def validate_recipe(data: dict[str, Any], source: str = "recipe") -> Recipe:
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as err:
        raise _one_line(source, "", err) from None
    for part in PARTS:
        setattr(recipe, part, _validate_part(source, part, getattr(recipe, part)))
    if not isinstance(recipe.build, BuildConfig):  # the loop reads uses_samples from it
        raise UserError(f"{source}: build.kind: {recipe.build.kind!r} registered a config that is not a BuildConfig; "
                        "subclass sharpen.builders.base.BuildConfig")
    if not isinstance(recipe.objective, TrainConfig):  # the loop reads init, reference and temperature from it
        raise UserError(f"{source}: objective.kind: {recipe.objective.kind!r} registered a config that is not a TrainConfig; "
                        "subclass sharpen.objectives.trainer.TrainConfig")
    if recipe.sample.split != "train":
        check_label_free(recipe, source)
    _check_paraphrases(recipe, source)
    from sharpen.monitor.watch import validate_monitors  # here: it loads the monitor registry

    recipe.monitors = validate_monitors(recipe.monitors, source)
    _check_adapt(recipe, source)
    if recipe.executor == "ray" and recipe.engine.kind != "hf":  # actors hold hf engines (sharpen.executors)
        detail = f"ray shards engine.kind=hf only (got {recipe.engine.kind}); set engine.kind=hf or executor=local"
        raise UserError(f"{source}: executor: {detail}", field="executor", detail=detail, related=("engine.kind",))
    temp = recipe.objective.temperature
    if temp is not None and abs(temp - recipe.sample.temperature) > 1e-9:
        # the sampler's log-probs (pi_old) are at sample.temperature: a different training
        # temperature makes the importance ratio wrong from the first step
        detail = f"{temp} must equal sample.temperature ({recipe.sample.temperature}); set both to the same value"
        raise UserError(f"{source}: objective.temperature: {detail}", field="objective.temperature", detail=detail,
                        related=("sample.temperature",))
    return recipe


# feedback that never reads a prompt's answer; builders that do (the gold completion) are refused
LABEL_FREE_FEEDBACK = {"vote", "co_vote", "harmony", "self_certainty", "likelihood", "judge"}
GOLD_BUILDERS = {"reference", "spin_pairs"}


def check_label_free(recipe: Recipe, source: str) -> None:
    """Training on eval or holdout questions is test-time training (TTRL): it may use their
    text, never their answers, or the held-out measurement would be measuring the labels."""
    fb = recipe.feedback
    kinds = [p.kind for p in fb.parts] if fb.kind == "combine" else [fb.kind]
    used = [k for k in kinds if k not in LABEL_FREE_FEEDBACK] + [recipe.build.kind] * (recipe.build.kind in GOLD_BUILDERS)
    if used:
        detail = (f"{recipe.sample.split!r} trains on held-out questions, but {', '.join(used)} reads their answers; "
                  f"use label-free feedback ({', '.join(sorted(LABEL_FREE_FEEDBACK))}) or sample.split=train")
        raise UserError(f"{source}: sample.split: {detail}", field="sample.split", detail=detail)
# feedback that votes over equivalent questions: the task must rephrase (`paraphrases` or `paraphrase`)
PARAPHRASE_FEEDBACK = {"co_vote", "harmony"}


def _check_paraphrases(recipe: Recipe, source: str) -> None:
    """Co-Reward / Self-Harmony on a task that cannot rephrase its questions would fail only
    after round 0; say so at load time (when the task's factory declares its class)."""
    fb = recipe.feedback
    kinds = {p.kind for p in [*getattr(fb, "parts", []), fb, *fb.audit]} & PARAPHRASE_FEEDBACK
    if not kinds:
        return
    try:
        cls = get_type_hints(TASKS.get(recipe.task.name).fn).get("return")
    except Exception:  # a plugin task without resolvable annotations: the feedback checks at run time
        return
    if isinstance(cls, type) and not (hasattr(cls, "paraphrases") or hasattr(cls, "paraphrase")):
        detail = (f"{', '.join(sorted(kinds))} votes over rephrased questions, but task {recipe.task.name!r} "
                  "has no paraphrases; use feedback: vote or a task with task.paraphrases")
        raise UserError(f"{source}: feedback.kind: {detail}", field="feedback.kind", detail=detail, related=("task.name",))


def _check_adapt(recipe: Recipe, source: str) -> None:
    """B-STaR's knobs must be knobs the recipe has: a build threshold, a free sampling temperature."""
    if recipe.adapt is None:
        return
    if "threshold" not in type(recipe.build).model_fields:
        detail = f"build.kind {recipe.build.kind!r} has no threshold to adapt; use build.kind: sft"
        raise UserError(f"{source}: adapt: {detail}", field="adapt", detail=detail, related=("build.kind",))
    if recipe.objective.temperature is not None:
        detail = "the objective's temperature must follow sample.temperature, which adapt changes; unset objective.temperature"
        raise UserError(f"{source}: adapt: {detail}", field="adapt", detail=detail, related=("objective.temperature",))


def load_recipe(ref: str | Path | dict[str, Any], overrides: list[str] | None = None) -> Recipe:
    """Load a recipe (built-in name, YAML path or mapping), apply overrides, validate."""
    if isinstance(ref, dict):
        source, data = "recipe", dict(ref)
    else:
        source, data = read_recipe_file(str(ref))
    overrides = list(overrides or [])
    apply_overrides(data, overrides)
    try:
        return validate_recipe(data, source)
    except UserError as err:
        raise _blame_override(err, overrides) from None


def _blame_override(err: UserError, overrides: list[str]) -> UserError:
    """Name the override a bad field came from (`override 'sample.n=-1': sample.n: ...`),
    not the recipe file, which may be fine."""
    if err.field is None:
        return err
    for item in reversed(overrides):  # the last override of a key is the one that counts
        key = item.partition("=")[0].strip()
        if any(f == key or f.startswith(key + ".") or key.startswith(f + ".") for f in (err.field, *err.related)):
            return UserError(f"override {item!r}: {err.field}: {err.detail}", field=err.field, detail=err.detail)
    return err
