"""A tiny OpenAI-compatible completions server over a real transformers model, for tests.

`with serve(model, tokenizer) as base_url:` runs a ThreadingHTTPServer on 127.0.0.1 (a free port)
in a daemon thread, serving `POST /v1/completions` and `GET /v1/models`, and stops it
when the block exits. Sampling is a plain token-by-token loop (no KV cache: the model is
tiny); sample j of a request draws from torch.Generator().manual_seed(seed + j), so the
same seed gives the same text. Log-probs are under log_softmax(logits / temperature),
before top-p (sharpen's convention). Like vLLM, special tokens (eos, and any other an
untrained model emits) are in `tokens` and `token_logprobs` but not in `text`, and
`return_tokens_as_token_ids` makes `tokens` "token_id:N" strings. `logprobs: k` returns, per
position, the k (at most 20) most likely tokens' log-probs and the sampled one's. Work is bounded (n, max_tokens, context are capped).
With `api_key`, every request must carry `Authorization: Bearer <api_key>` (else 401, as
OpenAI answers); the keys requests carried are appended to `keys`.
"""
from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import torch

MAX_N, MAX_TOKENS = 16, 128


class FakeOpenAIServer:
    """The model side: one lock around the model, so concurrent requests take turns."""

    def __init__(self, model: Any, tokenizer: Any, model_name: str, requests: list[dict[str, Any]]) -> None:
        self.model, self.tokenizer, self.model_name = model, tokenizer, model_name
        self.lock = threading.Lock()
        self.requests = requests  # every completions body received, for tests to inspect

    @torch.no_grad()
    def sample(self, prompt_ids: list[int], temperature: float, top_p: float, max_tokens: int,
               seed: int, stop: list[str], top: int = 0) -> tuple[list[int], list[float], str, str, list[dict[str, float]]]:
        """(ids, logprobs, text, finish_reason, top log-probs) of one sample: per position the
        `top` most likely tokens (decoded, as OpenAI keys them) and the sampled one."""
        g = torch.Generator().manual_seed(seed)
        eos = self.tokenizer.eos_token_id
        limit = getattr(self.model.config, "max_position_embeddings", 256)
        ids, lps, text, reason, tops = list(prompt_ids), [], "", "length", []
        for _ in range(min(max_tokens, MAX_TOKENS, max(0, limit - len(prompt_ids)))):
            logits = self.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
            logp = torch.log_softmax(logits / temperature if temperature > 0 else logits, -1)
            if temperature <= 0:
                tok = int(logits.argmax())
            else:
                probs = logp.exp()
                if top_p < 1.0:
                    sorted_p, order = probs.sort(descending=True)
                    keep = sorted_p.cumsum(0) - sorted_p < top_p
                    probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
                tok = int(torch.multinomial(probs, 1, generator=g))
            ids.append(tok)
            lps.append(float(logp[tok]))
            best = logp.topk(min(top, logp.numel())).indices.tolist() if top > 0 else []
            tops.append({})
            for t in best + [tok]:
                tops[-1].setdefault(self.tokenizer.decode([t], skip_special_tokens=True), float(logp[t]))
            if tok == eos:
                reason = "stop"
                break
            text = self.tokenizer.decode(ids[len(prompt_ids):], skip_special_tokens=True)
            hit = next((s for s in stop if s and s in text), None)
            if hit is not None:
                text, reason = text[: text.index(hit)], "stop"
                break
        return ids[len(prompt_ids):], lps, text, reason, tops

    def completions(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append(body)
        if body.get("model") != self.model_name:
            return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                   "type": "NotFoundError", "code": 404}}
        prompts = body.get("prompt", "")
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        n = min(int(body.get("n") or 1), MAX_N)
        temperature = float(body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0)
        top_p = float(body.get("top_p") or 1.0)
        max_tokens = int(body.get("max_tokens") or 16)
        seed = body.get("seed")
        seed = int(seed) if seed is not None else int(torch.randint(0, 2**31, ()).item())
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        choices = []
        with self.lock:
            for p, prompt in enumerate(prompts[:MAX_N]):
                prompt_ids = self.tokenizer.encode(prompt)
                for j in range(n):
                    ids, lps, text, reason, tops = self.sample(prompt_ids, temperature, top_p, max_tokens, seed + j, stop,
                                                               top=min(int(body.get("logprobs") or 0), 20))
                    tokens = ([f"token_id:{t}" for t in ids] if body.get("return_tokens_as_token_ids")
                              else [self.tokenizer.decode([t], skip_special_tokens=True) for t in ids])
                    choice: dict[str, Any] = {"index": p * n + j, "text": text, "finish_reason": reason}
                    if body.get("logprobs") is not None:
                        choice["logprobs"] = {"tokens": tokens, "token_logprobs": lps,
                                              "top_logprobs": tops,
                                              "text_offset": [0] * len(tokens)}
                    choices.append(choice)
        return 200, {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
                     "model": self.model_name, "choices": choices}


def _handler(server: FakeOpenAIServer, api_key: str | None, keys: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

        def _refused(self) -> bool:
            """401 unless the request carries the key (when the server has one)."""
            given = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            keys.append(given)
            if api_key is None or given == api_key:
                return False
            self._send(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                       "code": "invalid_api_key"}})
            return True

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self._refused():
                return
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "Not Found", "code": 404}})

        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
            body_bytes = self.rfile.read(length)
            if self._refused():
                return
            if self.path.rstrip("/") != "/v1/completions":
                self._send(404, {"error": {"message": "Not Found", "code": 404}})
                return
            try:
                body = json.loads(body_bytes or b"{}")
            except json.JSONDecodeError as err:
                self._send(400, {"error": {"message": f"bad JSON: {err}", "code": 400}})
                return
            self._send(*server.completions(body))

    return Handler


@contextmanager
def serve(model: Any, tokenizer: Any, model_name: str = "tiny", requests: list[dict[str, Any]] | None = None,
          api_key: str | None = None, keys: list[str] | None = None) -> Iterator[str]:
    """The base URL (ending in /v1) while the block runs, on loopback only; each request
    body is appended to `requests` and each request's key to `keys` when given. With
    `api_key`, a request without that key gets 401."""
    fake = FakeOpenAIServer(model.eval(), tokenizer, model_name, requests if requests is not None else [])
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake, api_key, keys if keys is not None else []))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
