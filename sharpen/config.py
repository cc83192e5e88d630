"""Recipes: YAML files validated by pydantic, with `key=value` overrides.

A recipe names one choice per part (task, feedback, build, objective) by `kind`/`name`;
each part's knobs are validated by the pydantic model it registered, so a typo or a bad
value fails here, before any compute, with one line naming the field and the fix.
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sharpen.builders.base import BuildConfig
from sharpen.engines.openai_client import ApiKey, check_env_name, key_from_env
from sharpen.errors import UserError, field_error, one_line
from sharpen.overrides import apply_overrides as _apply
from sharpen.overrides import blame_override, is_secret_key
from sharpen.recipe_checks import check_adapt, check_engine_and_temperature, check_label_free, check_paraphrases
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
    api_key: ApiKey = Field(None, description="openai: the API key; never written (config.yaml holds null), so a resumed "
                                              "run needs it again (default: $OPENAI_API_KEY, else 'EMPTY')")
    api_key_env: str | None = Field(None, description="openai: the environment variable holding the key, e.g. MY_KEY "
                                                      "(the name is written, the value read at load)")
    timeout: float = Field(60.0, gt=0, description="openai: seconds per request")

    _env_name = field_validator("api_key_env")(check_env_name)

    @model_validator(mode="after")
    def _openai_needs_server(self) -> "EngineConfig":
        if self.kind == "openai" and (not self.base_url or not self.model):
            raise ValueError("engine openai needs engine.base_url and engine.model")
        self.api_key = key_from_env(self.api_key, self.api_key_env, used=self.kind == "openai", section="engine")
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

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        """The run directory is runs/<name>-<time>: a separator or '..' would put it elsewhere."""
        if not name.strip() or any(bad in name for bad in ("/", "\\", "..")):
            raise ValueError("the run directory is named after it: use a plain name without /, \\ or .., e.g. my_star")
        return name

    def resolved(self) -> dict[str, Any]:
        """The fully resolved recipe (every default filled in) for config.yaml: keys (`api_key`)
        are null, so this is also what another process may be handed (see openai_client.export_keys)."""
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


def _validation_error(source: str, prefix: str, err: ValidationError) -> UserError:
    e = err.errors()[0]
    field = ".".join(p for p in (prefix, _where(e["loc"])) if p)
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling; `sharpen recipes --keys` lists the knobs)"
    elif e["type"] == "missing":
        msg = "missing: add it to the recipe or pass " + f"{field}=..."
    elif "input" in e and not isinstance(e["input"], (dict, list)) and not is_secret_key(field):
        msg += f" (got {e['input']!r})"
    return field_error(source, field, msg)


def _validate_part(source: str, part: str, value: Any) -> BaseModel:
    registry, key = PARTS[part]
    if isinstance(value, str):
        value = {key: value}
    if not isinstance(value, dict):
        raise UserError(f"{source}: {part}: expected a mapping with `{key}:` (got {value!r})")
    name = value.get(key)
    if name is None:
        raise field_error(source, f"{part}.{key}", f"missing; one of {', '.join(registry.names())}")
    try:
        entry = registry.get(str(name))
    except KeyError:
        raise field_error(source, f"{part}.{key}", f"unknown {registry.part} {name!r}; "
                          f"one of {', '.join(registry.names())}") from None
    try:
        return entry.config.model_validate(value)
    except ValidationError as err:
        raise _validation_error(source, part, err) from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides to a raw recipe mapping (in place): `sharpen.overrides`."""
    return _apply(data, overrides, {part: key for part, (_, key) in PARTS.items()})


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
        raise UserError(f"{path}: cannot read recipe ({one_line(exc)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a recipe is a YAML mapping (name:, task:, build:, objective:, ...)")
    return str(path), data


def validate_recipe(data: dict[str, Any], source: str = "recipe") -> Recipe:
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as err:
        raise _validation_error(source, "", err) from None
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
    check_paraphrases(recipe, source)
    from sharpen.monitor.watch import validate_monitors  # here: it loads the monitor registry

    recipe.monitors = validate_monitors(recipe.monitors, source)
    check_adapt(recipe, source)
    check_engine_and_temperature(recipe, source)
    return recipe


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
        raise blame_override(err, overrides) from None
