"""One set-up for every caller of an OpenAI-compatible server (`engine: openai`, the openai
judge): where the API key comes from, the client, and a failed request as one line.

A key never leaves the process in a file or an argument. `api_key` is a SecretStr that
every dump writes as null, so config.yaml, the report and a worker's recipe hold none;
`api_key_env` names a variable instead (the name is written, the value read at load).
With neither, the key is the one `export_keys` put in this process's environment for
this server (a literal key handed to worker processes, which inherit the environment),
else $OPENAI_API_KEY, else 'EMPTY' (servers that check no key).
"""
from __future__ import annotations

import hashlib
import os
import re
from contextlib import contextmanager
from typing import Annotated, Any, Callable, Iterator

from pydantic import BaseModel, BeforeValidator, PlainSerializer, SecretStr

from sharpen.errors import UserError, one_line
from sharpen.overrides import SECRET_FIELD

PRIVATE_PREFIX = "SHARPEN_API_KEY_"  # + a hash of the server's URL: see private_env_name
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _as_text(value: Any) -> Any:
    """A YAML key that looks like a number (`api_key: 1234`) is still the key's text."""
    return str(value) if isinstance(value, (int, float)) else value


# the key itself: validated as text, dumped as null by model_dump (json or python)
ApiKey = Annotated[SecretStr | None, BeforeValidator(_as_text), PlainSerializer(lambda _: None, return_type=None)]


def check_env_name(name: str | None) -> str | None:
    """`api_key_env` is a variable's name, not the key (a key pasted there would be written)."""
    if name is not None and not _ENV_NAME.fullmatch(name):
        raise ValueError("api_key_env names an environment variable (letters, digits, _), e.g. MY_KEY; "
                         "a key itself goes in api_key")
    return name


def key_from_env(key: SecretStr | None, key_env: str | None, used: bool, section: str) -> SecretStr | None:
    """The key a config holds after load: its literal one, else the value of `key_env` (a
    missing variable is refused now, before anything runs). `used`: the config calls a server."""
    if key is not None or key_env is None or not used:
        return key
    value = os.environ.get(key_env)
    if not value:
        raise ValueError(f"{section}.api_key_env: ${key_env} is not set; export {key_env}=<key>, "
                         f"or pass {section}.api_key=<key> (a key is never written to the run)")
    return SecretStr(value)


def private_env_name(base_url: str) -> str:
    """The variable `export_keys` sets for one server: named by its URL (hashed: a name has no
    '/'), so a key is only ever sent where it was given."""
    return PRIVATE_PREFIX + hashlib.sha256(base_url.rstrip("/").encode()).hexdigest()[:16].upper()


def resolve_key(key: str | SecretStr | None, base_url: str) -> str:
    """The key sent to `base_url`: `key`, else the exported one for this server, else
    $OPENAI_API_KEY, else 'EMPTY'."""
    if isinstance(key, SecretStr):
        key = key.get_secret_value()
    return key or os.environ.get(private_env_name(base_url)) or os.environ.get("OPENAI_API_KEY") or "EMPTY"


def keyed_configs(node: Any) -> Iterator[BaseModel]:
    """Every config under `node` (a recipe, nested feedback parts and audits) with a key field."""
    if isinstance(node, BaseModel):
        if SECRET_FIELD in type(node).model_fields:
            yield node
        for name in type(node).model_fields:
            yield from keyed_configs(getattr(node, name))
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from keyed_configs(item)
    elif isinstance(node, dict):
        for item in node.values():
            yield from keyed_configs(item)


def export_keys(configs: Any) -> list[str]:
    """Put every literal key under `configs` into this process's environment under its
    server's private name, for processes started after this (spawned workers, a local Ray
    cluster): they get the recipe without its key and find the key here. Returns the names.
    Two different keys for one server are refused: a worker could not tell which is whose."""
    found: dict[str, tuple[str, str]] = {}
    for cfg in keyed_configs(configs):
        key, url = getattr(cfg, SECRET_FIELD), getattr(cfg, "base_url", None)
        if key is None or not url or getattr(cfg, "api_key_env", None):  # a named variable: workers read it
            continue
        name = private_env_name(url)
        if name in found and found[name][0] != key.get_secret_value():
            raise UserError(f"api_key: two different keys are given for {url}; give each run its key by api_key_env")
        found[name] = (key.get_secret_value(), url)
    os.environ.update({name: key for name, (key, _) in found.items()})
    return sorted(found)


def scrub_keys(text: str, configs: Any) -> str:
    """`text` (a traceback for error.log) with every key under `configs` replaced by ***."""
    for cfg in keyed_configs(configs):
        key = getattr(cfg, SECRET_FIELD)
        if key is not None and key.get_secret_value():
            text = text.replace(key.get_secret_value(), "***")
    return text


@contextmanager
def keys_in_environment(configs: Any) -> Iterator[list[str]]:
    """`export_keys` for the block's worker processes only: the names go when it ends, so a
    later run in this process is not handed a key it was not given."""
    names = export_keys(configs)
    try:
        yield names
    finally:
        for name in names:
            os.environ.pop(name, None)


def keyed_mappings(data: Any) -> Iterator[dict[str, Any]]:
    """Every block of a raw recipe mapping (resolved(), config.yaml) with a key field."""
    if isinstance(data, dict):
        if SECRET_FIELD in data:
            yield data
        for v in data.values():
            yield from keyed_mappings(v)
    elif isinstance(data, (list, tuple)):
        for v in data:
            yield from keyed_mappings(v)


def exported_servers(data: Any) -> list[str]:
    """The servers a raw recipe mapping calls with a key only this process's environment
    holds (`export_keys`): a process that did not inherit this environment lacks it."""
    return [str(m["base_url"]) for m in keyed_mappings(data) if m.get("base_url") and not m.get("api_key_env")
            and not m.get(SECRET_FIELD) and private_env_name(str(m["base_url"])) in os.environ]


def import_openai(field: str) -> Any:
    try:
        import openai
    except ImportError:
        raise UserError(f"{field}: the `openai` package is missing; pip install openai", field=field) from None
    return openai


def make_client(base_url: str, key: str | SecretStr | None, *, timeout: float, max_retries: int,
                field: str = "engine") -> Any:
    """An `openai.OpenAI` for `base_url` with the key `resolve_key` picks."""
    openai = import_openai(field)
    return openai.OpenAI(base_url=base_url, api_key=resolve_key(key, base_url), timeout=timeout, max_retries=max_retries)


def api_error(err: Exception, client: Any, *, section: str, model: str, model_field: str = "model") -> UserError:
    """A failed request as one line naming the field to fix (`<section>.base_url`, `.<model_field>`,
    `.api_key`), with the server's words but never the key (scrubbed should a server echo it)."""
    import openai

    url, key = str(client.base_url).rstrip("/"), str(client.api_key)
    if isinstance(err, openai.APIConnectionError):  # includes APITimeoutError
        reason = "timed out" if isinstance(err, openai.APITimeoutError) else _root_cause(err)
        return _user_error(f"{section}.base_url", f"cannot reach {url} ({_scrub(reason, key)}); "
                           f"start the server or fix {section}.base_url")
    status = getattr(err, "status_code", None)
    body = getattr(err, "body", None)
    message = body.get("message") if isinstance(body, dict) and body.get("message") else getattr(err, "message", err)
    message = _scrub(one_line(message), key)
    if status == 404 and "model" in message.lower():
        served = served_models(client)
        hint = f"set it to one the server serves: {', '.join(served)}" if served else f"fix {section}.{model_field}"
        return _user_error(f"{section}.{model_field}", f"{url} has no model {model!r} ({message}); {hint}")
    if status in (401, 403):
        return _user_error(f"{section}.api_key", f"{url} refused the key (HTTP {status}: {message}); pass "
                           f"{section}.api_key=<key> (also to `sharpen resume`), set {section}.api_key_env or OPENAI_API_KEY")
    return _user_error(f"{section}.base_url", f"{url} answered HTTP {status} ({message}); "
                       f"check the server and {section}.base_url (the API root, e.g. http://host:8000/v1)")


def guarded(client: Any, call: Callable[[], Any], *, section: str, model: str, model_field: str = "model") -> Any:
    """`call()`, with an API failure raised as `api_error`'s one line (no traceback, no key)."""
    import openai

    try:
        return call()
    except openai.APIError as err:
        raise api_error(err, client, section=section, model=model, model_field=model_field) from None


def served_models(client: Any) -> list[str]:
    try:
        return sorted(m.id for m in client.models.list())
    except Exception:  # best effort: only a hint in an error message
        return []


def _user_error(field: str, detail: str) -> UserError:
    return UserError(f"{field}: {detail}", field=field, detail=detail)


def _scrub(text: str, key: str) -> str:
    return text.replace(key, "***") if key and key != "EMPTY" else text


def _root_cause(err: BaseException) -> str:
    """The innermost cause's message (e.g. 'Connection refused'), not the client's generic one."""
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return one_line(err, 160)
