"""Checks across a recipe's parts, run at load time: each would otherwise fail (or, worse,
measure the wrong thing) only after round 0."""
from __future__ import annotations

from typing import Any, get_type_hints

from sharpen.errors import field_error
from sharpen.registry import TASKS

# feedback that never reads a prompt's answer; builders that do (the gold completion) are refused
LABEL_FREE_FEEDBACK = {"vote", "co_vote", "harmony", "self_certainty", "likelihood", "judge"}
GOLD_BUILDERS = {"reference", "spin_pairs"}
# feedback that votes over equivalent questions: the task must rephrase (`paraphrases` or `paraphrase`)
PARAPHRASE_FEEDBACK = {"co_vote", "harmony"}


def check_label_free(recipe: Any, source: str) -> None:
    """Training on eval or holdout questions is test-time training (TTRL): it may use their
    text, never their answers, or the held-out measurement would be measuring the labels."""
    fb = recipe.feedback
    kinds = [p.kind for p in fb.parts] if fb.kind == "combine" else [fb.kind]
    used = [k for k in kinds if k not in LABEL_FREE_FEEDBACK] + [recipe.build.kind] * (recipe.build.kind in GOLD_BUILDERS)
    if used:
        raise field_error(source, "sample.split",
                          f"{recipe.sample.split!r} trains on held-out questions, but {', '.join(used)} reads their "
                          f"answers; use label-free feedback ({', '.join(sorted(LABEL_FREE_FEEDBACK))}) or sample.split=train")


def check_paraphrases(recipe: Any, source: str) -> None:
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
        raise field_error(source, "feedback.kind",
                          f"{', '.join(sorted(kinds))} votes over rephrased questions, but task {recipe.task.name!r} "
                          "has no paraphrases; use feedback: vote or a task with task.paraphrases", related=("task.name",))


def check_adapt(recipe: Any, source: str) -> None:
    """B-STaR's knobs must be knobs the recipe has: a build threshold, a free sampling temperature."""
    if recipe.adapt is None:
        return
    if "threshold" not in type(recipe.build).model_fields:
        raise field_error(source, "adapt", f"build.kind {recipe.build.kind!r} has no threshold to adapt; "
                          "use build.kind: sft", related=("build.kind",))
    if recipe.objective.temperature is not None:
        raise field_error(source, "adapt", "the objective's temperature must follow sample.temperature, which adapt "
                          "changes; unset objective.temperature", related=("objective.temperature",))


def check_engine_and_temperature(recipe: Any, source: str) -> None:
    """Ray actors hold hf engines; the trainer's temperature must be the sampler's."""
    if recipe.executor == "ray" and recipe.engine.kind != "hf":  # actors hold hf engines (sharpen.executors)
        raise field_error(source, "executor", f"ray shards engine.kind=hf only (got {recipe.engine.kind}); "
                          "set engine.kind=hf or executor=local", related=("engine.kind",))
    temp = recipe.objective.temperature
    if temp is not None and abs(temp - recipe.sample.temperature) > 1e-9:
        # the sampler's log-probs (pi_old) are at sample.temperature: a different training
        # temperature makes the importance ratio wrong from the first step
        raise field_error(source, "objective.temperature", f"{temp} must equal sample.temperature "
                          f"({recipe.sample.temperature}); set both to the same value", related=("sample.temperature",))
