"""`engine: openai`: sample from any OpenAI-compatible server (vLLM serve, SGLang, llama.cpp)
through its *completions* endpoint, with per-token log-probs.

For evaluation, and for sampling where the run does not train that server's weights.
Completions, not chat: sharpen owns the prompt format, so the chat template is rendered
here (with the checkpoint's tokenizer) and the server sees exactly the text we mean.

Log-prob semantics (`Completion.logprobs`) depend on the server, not on this client:
- vLLM serve (v1) returns, by default (`--logprobs-mode raw_logprobs`), log_softmax of the
  *raw* logits: before temperature, penalties and top-k/top-p. With
  `--logprobs-mode processed_logprobs` they are taken after temperature, penalties AND
  top-k/top-p truncation (renormalised over the nucleus). sharpen's convention
  (log_softmax(logits / T), before top-p) is therefore met by raw mode at T=1, or by
  processed mode at top_p=1 (checked in vllm/v1/sample/sampler.py and
  ops/topk_topp_sampler.py).
- Other servers differ again. So this engine sets `syncs_weights = False`: the loop skips
  the probe check and GRPO recomputes pi_old with the trainer rather than trusting these.

The client, its key (never written, never a worker's argument) and the one-line errors of
a failed request are `sharpen.engines.openai_client`'s, shared with the openai judge.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Callable, Literal, Sequence

from pydantic import SecretStr

from sharpen.engines.openai_client import guarded, make_client
from sharpen.errors import UserError
from sharpen.types import Completion, PolicyModel, SamplingParams


class OpenAIEngine:
    """One completions request per prompt (`n` samples, `seed=seeds[i]`), run concurrently."""

    name = "openai"
    syncs_weights = False

    def __init__(self, base_url: str, model: str, *, api_key: str | SecretStr | None = None, tokenizer: Any = None,
                 prompt_format: Literal["chat", "raw"] = "chat", system_prompt: str | None = None,
                 stop: Sequence[str] = (), stop_token_ids: Sequence[int] = (), timeout: float = 60.0,
                 max_retries: int = 2, concurrency: int = 8, extra_body: dict[str, Any] | None = None) -> None:
        if prompt_format not in ("chat", "raw"):
            raise UserError(f"engine.prompt_format: {prompt_format!r}; use chat or raw", field="engine.prompt_format")
        self.base_url, self.model = base_url.rstrip("/"), model
        self.tokenizer, self.system_prompt = tokenizer, system_prompt
        self.chat = prompt_format == "chat" and bool(getattr(tokenizer, "chat_template", None))
        self.stop, self.concurrency = list(stop), max(1, concurrency)
        # `stop_token_ids` is a vLLM/SGLang extension; other fields go through `extra_body`.
        self.extra_body = dict(extra_body or {})
        if stop_token_ids:
            self.extra_body["stop_token_ids"] = list(stop_token_ids)
        self.client = make_client(self.base_url, api_key, timeout=timeout, max_retries=max_retries, field="engine")

    def render(self, prompt: str) -> str:
        """The text sent: the chat template applied locally when there is one, else the raw prompt.

        A template that writes the BOS token may get a second one from a server that adds
        special tokens (vLLM's `add_special_tokens`, default true): pass
        `extra_body={"add_special_tokens": False}` there.
        """
        if not self.chat:
            return prompt
        messages = ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else [])
        messages.append({"role": "user", "content": prompt})
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int],
                 progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        out: list[list[Completion] | None] = [None] * len(prompts)
        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(prompts)))) as pool:
            futures = {pool.submit(self._one, p, params, int(s)): i for i, (p, s) in enumerate(zip(prompts, seeds))}
            try:
                for fut in as_completed(futures):
                    out[futures[fut]] = fut.result()
                    if progress is not None:
                        progress(1)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return [group for group in out if group is not None]

    def _one(self, prompt: str, params: SamplingParams, seed: int) -> list[Completion]:
        """Prompt `prompt`'s n samples: one request, so `seed` alone decides them (not batching)."""
        resp = guarded(self.client, lambda: self.client.completions.create(
            model=self.model, prompt=self.render(prompt), n=params.n, seed=seed, logprobs=1,
            temperature=params.temperature if params.temperature > 0 else 0.0, top_p=params.top_p,
            max_tokens=params.max_new_tokens, stop=self.stop or None, extra_body=self.extra_body or None),
            section="engine", model=self.model)
        choices = sorted(resp.choices, key=lambda c: c.index)
        return [self._completion(c) for c in choices]

    def _completion(self, choice: Any) -> Completion:
        lp = choice.logprobs
        logprobs = [float(x) if x is not None else 0.0 for x in (lp.token_logprobs or [])] if lp else []
        finished = choice.finish_reason == "stop"
        tokens = list(lp.tokens or []) if lp else []
        if tokens and all(t.startswith("token_id:") for t in tokens):
            # vLLM's `return_tokens_as_token_ids`: the server's own ids, exact.
            ids = [int(t[len("token_id:"):]) for t in tokens]
        elif self.tokenizer is not None:
            # Re-encoded: the server's ids when this is its tokenizer and the text holds every
            # token; a special token the server left out of the text, a stop string cut
            # mid-token or another tokenizer misaligns them with `logprobs` (on vLLM pass
            # extra_body={"return_tokens_as_token_ids": True} for exact ids).
            ids = list(self.tokenizer.encode(choice.text, add_special_tokens=False))
            eos = getattr(self.tokenizer, "eos_token_id", None)
            if finished and eos is not None:
                ids.append(int(eos))
        else:
            ids = []
        return Completion(text=choice.text, token_ids=ids, logprobs=logprobs, finished=finished)

    def sync(self, policy: PolicyModel) -> None:
        """No-op: the server samples its own weights, which this run does not train."""

    def sleep(self) -> None:
        """The server's memory is not ours to free."""

    def close(self) -> None:
        self.client.close()

