import os
import sys

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Seed models and other caches go to a per-session temp dir, never ~/.cache."""
    if "SHARPEN_CACHE" not in os.environ:
        monkeypatch.setenv("SHARPEN_CACHE", str(tmp_path_factory.getbasetemp() / "sharpen-cache"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A freshly initialised tiny model saved in HF format (seconds, no seeding)."""
    from sharpen.policy import new_tiny_policy

    path = tmp_path_factory.mktemp("tiny") / "ckpt"
    new_tiny_policy(0).save(path)
    return path


MICRO = ["rounds=1", "sample.n=2", "sample.prompts_per_round=8", "eval.n=8", "eval.k=2",
         "sample.max_new_tokens=12", "eval.max_new_tokens=12"]


@pytest.fixture
def micro_overrides(tiny_checkpoint):
    """Overrides that turn any recipe into a seconds-long run on the untrained tiny model."""
    return [*MICRO, f"policy.path={tiny_checkpoint}"]


WEAK_TASK = {"name": "arithmetic", "difficulty": [1, 2], "width": 2}


@pytest.fixture(scope="session")
def weak_checkpoint(tmp_path_factory):
    """A tiny model with a little SFT on 1-2 digit arithmetic: some samples right, some
    wrong, so every builder and objective gets real data in micro runs (~10 s)."""
    from sharpen.seeding import SeedConfig, train_seed
    from sharpen.tasks import make_task

    cfg = SeedConfig(max_steps=120, check_every=120, check_n=50, batch_size=64, band=(0.0, 1.0), min_op_accuracy=0.0)
    policy, _ = train_seed(make_task(WEAK_TASK), 0, cfg)
    path = tmp_path_factory.mktemp("weak") / "ckpt"
    policy.save(path)
    return path


@pytest.fixture
def weak_overrides(weak_checkpoint):
    """Micro-run overrides on the weak model and its 1-2 digit task."""
    return [*MICRO, f"policy.path={weak_checkpoint}", "task.difficulty=[1, 2]", "task.width=2",
            "sample.prompts_per_round=24", "sample.n=4", "eval.k=4"]


CHAT_TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<assistant>{% endif %}")


def small_tiny_policy(seed: int = 0):
    """The built-in tiny architecture shrunk to one narrow layer: a training step is milliseconds."""
    from sharpen.policy import new_tiny_policy

    return new_tiny_policy(seed, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, num_key_value_heads=2)


@pytest.fixture(scope="session")
def chat_checkpoint(tmp_path_factory):
    """A tiny *instruct* model, as SmolLM2-Instruct behaves: with its chat template applied it
    answers "Answer: 7"; fed the raw prompt it ends the turn at once (an empty answer, 0%).
    It also ends turns with a second end token (<unk>) listed only in generation_config."""
    from sharpen.objectives.sft import sft_loss
    from sharpen.objectives.trainer import fit

    policy = small_tiny_policy(0)
    policy.tokenizer.chat_template = CHAT_TEMPLATE
    policy.model.generation_config.eos_token_id = [policy.tokenizer.eos_token_id, policy.tokenizer.unk_token_id]
    questions = [f"What is {a} plus {7 - a}?" for a in range(8)]
    chat = [("chat", q) for q in questions]
    raw = [("raw", q) for q in questions]

    def loss_fn(batch):
        prompts, completions = [], []
        for fmt, q in batch:
            policy.prompt_format = fmt
            prompts.append(policy.encode_prompt(q))
            completions.append(policy.encode_completion("Answer: 7" if fmt == "chat" else ""))
        policy.prompt_format = "chat"
        lp, mask = policy.token_logprobs(prompts, completions)
        return sft_loss(lp, mask), {}

    torch.manual_seed(0)
    fit(policy, (chat + raw) * 4, loss_fn, lr=1e-2, epochs=25, batch_size=16, generator=torch.Generator().manual_seed(0))
    policy.prompt_format = "chat"
    path = tmp_path_factory.mktemp("chat") / "ckpt"
    policy.save(path)
    return path


def run_cli(capsys, monkeypatch, *args: object) -> tuple[int, str, str]:
    """The real `sharpen` entry point in-process: (exit code, stdout, stderr)."""
    from sharpen.cli import main

    monkeypatch.setattr(sys, "argv", ["sharpen", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def table_rows(out: str) -> list[list[str]]:
    """The body rows of the rich tables a command printed, as stripped cells."""
    return [[c.strip() for c in line.strip().strip("│").split("│")] for line in out.splitlines()
            if line.strip().startswith("│") and "%" in line]
