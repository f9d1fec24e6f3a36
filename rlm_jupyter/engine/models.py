"""Model calls: every model, hosted or local, goes through litellm (imported on the first call, not at import).

Model names: any litellm model ("gpt-4o-mini", "anthropic/…", "openai/NAME" with api_base=…, "ollama/…"), plus
our own, registered as a litellm custom provider so they take the same code path (see _providers.py):
    "offline"        the rule-based demo model, root role (writes REPL code); "offline-sub": its extractive sub role
    "script:FILE"    answers from a JSON list of strings, in call order (an error when exhausted)
    "replay:TRACE"   answers from a recorded trace: step responses for root calls, sub-call responses for sub calls
                     ("replay-sub:TRACE" forces the sub role)
Calls made with role="sub" (sub_llm does) use the sub role of "offline" and "replay:"; "script:" files may hold
{"root": [...], "sub": [...]} to script each role separately.

Keys come only from the environment: `api_key=` is refused, and nothing this module returns, raises or logs holds a
key or an auth header (error texts pass through the trace Redactor). Retries with exponential backoff (honouring
Retry-After) for 429, 5xx, timeouts, connection errors and streams that end before their finish reason; never for
401/403 (auth) or a malformed response. Every call is bounded in wall time: `timeout_s` per attempt and
`total_timeout_s` for the call with its retries (budget.DEFAULT_CALL_TIMEOUT_S / DEFAULT_CALL_TOTAL_S), and by a
`deadline=` (time.monotonic() value) the caller passes, e.g. what is left of a run's seconds budget or a REPL
step (rounded up to whole seconds, see _http_timeout); a call out of time fails with kind "timeout".
Cost comes from litellm's price map, or from `cost_per_token` overrides; local models cost 0 and count
tokens as characters/4.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .budget import DEFAULT_CALL_TIMEOUT_S, DEFAULT_CALL_TOTAL_S

# Calls in flight at once for sub_llm_batch: a batch of up to 32 prompts goes out in one wave (the target is a batch
# costing at most 2x one call); providers' rate limits are handled by the retries with backoff.
BATCH_CONCURRENCY = 32

log = logging.getLogger("rlm_jupyter.models")

__all__ = ["Completion", "ModelError", "Models", "sub_llm"]


@dataclass
class Completion:
    text: str
    model: str  # the name the caller used
    tokens_in: int
    tokens_out: int
    cost_usd: float | None  # None when unknown
    latency_s: float  # wall time of the whole call, retries included
    finish_reason: str | None = None
    attempts: int = 1  # 1 + the retries it took
    cache_read: int | None = None  # prompt tokens read from the provider's prompt cache (part of tokens_in)
    cache_write: int | None = None  # prompt tokens written to it (Anthropic's cache creation)

    def cache_fields(self) -> dict:
        """The cache counts for a trace event, only those the provider reported."""
        return {
            k: v for k, v in (("cache_read_tokens", self.cache_read), ("cache_write_tokens", self.cache_write)) if v
        }


class ModelError(RuntimeError):
    """A model call that failed for good; the message says what to do. `kind` is one of: unknown_model,
    missing_key, auth, bad_request, not_found, rate_limit, timeout, server, connection, bad_response, local,
    config."""

    def __init__(self, message: str, *, model: str | None = None, kind: str = "error", retryable: bool = False):
        super().__init__(message)
        self.model = model
        self.kind = kind
        self.retryable = retryable


# --- litellm, loaded once on first use ------------------------------------------------------------------------

_litellm = None
_litellm_lock = threading.Lock()


def load_litellm():
    """Import litellm with no network: the bundled price map, offline mode, no debug prints; register our provider."""
    global _litellm
    if _litellm is not None:
        return _litellm
    with _litellm_lock:
        if _litellm is None:
            # Before the import: otherwise litellm fetches its price map from GitHub (seconds when offline).
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
            import litellm

            from . import _providers

            litellm.suppress_debug_info = True
            current = [p for p in (litellm.custom_provider_map or []) if p.get("provider") != _providers.PROVIDER]
            litellm.custom_provider_map = [
                *current,
                {"provider": _providers.PROVIDER, "custom_handler": _providers.make_handler()},
            ]
            _litellm = litellm
    return _litellm


def warm_litellm(litellm) -> None:
    """Make litellm import what its first call imports (~0.3 s here: its HTTP stack, logging, proxy types) with a
    mocked call (`mock_response`: no network, no key, no cost): for a fresh process whose first runs would each
    wait on those imports together (a Ray actor)."""
    with contextlib.suppress(Exception):
        litellm.completion(
            model="openai/rlmj-warm-up", messages=[{"role": "user", "content": "-"}], mock_response="-", api_key="-"
        )
        import httpx

        httpx.Client().close()


# --- names -----------------------------------------------------------------------------------------------------


@dataclass
class _Target:
    name: str  # what the caller said
    litellm_model: str  # what litellm is given
    local: bool  # one of our providers (no key, no network, cost 0)


def _resolve(model: str, role: str, session: str) -> _Target:
    if not isinstance(model, str) or not model.strip():
        raise ModelError(
            "no model given: pass a litellm model name (e.g. 'gpt-4o-mini') or 'offline'",
            model=str(model),
            kind="unknown_model",
        )
    if role not in ("root", "sub"):
        raise ModelError(f"role must be 'root' or 'sub', not {role!r}", model=model, kind="config")
    if model in ("offline", "offline-sub"):
        r = "sub" if model == "offline-sub" else role
        return _Target(model, f"rlmj/offline/{r}/{session}/-", True)
    for prefix, kind, forced in (
        ("script:", "script", None),
        ("replay-sub:", "replay", "sub"),
        ("replay:", "replay", None),
    ):
        if model.startswith(prefix):
            path = model[len(prefix) :]
            if not path:
                raise ModelError(f"{model!r} names no file: use '{prefix}PATH'", model=model, kind="config")
            path = str(Path(path).expanduser().resolve())
            return _Target(model, f"rlmj/{kind}/{forced or role}/{session}/{path}", True)
    return _Target(model, model, False)


_KEYLIKE = re.compile(r"_(API_KEY|KEY|TOKEN)$")


def _redact(text: str) -> str:
    from ..trace.writer import Redactor

    return Redactor()(text)


# --- errors ----------------------------------------------------------------------------------------------------

_RETRYABLE = (
    "RateLimitError",
    "InternalServerError",
    "ServiceUnavailableError",
    "APIConnectionError",
    "Timeout",
    "MidStreamFallbackError",
    "BadGatewayError",
    "_Dropped",
)
_KINDS = {
    "RateLimitError": "rate_limit",
    "Timeout": "timeout",
    "AuthenticationError": "auth",
    "_BadResponse": "bad_response",
    "JSONDecodeError": "bad_response",
    "APIResponseValidationError": "bad_response",
    "UnprocessableEntityError": "bad_request",
    "_OutOfTime": "timeout",
    "PermissionDeniedError": "auth",
    "NotFoundError": "not_found",
    "BadRequestError": "bad_request",
    "ContextWindowExceededError": "bad_request",
    "APIConnectionError": "connection",
    "InternalServerError": "server",
    "ServiceUnavailableError": "server",
    "MidStreamFallbackError": "connection",
    "BadGatewayError": "server",
    "_Dropped": "connection",
}


class _Dropped(Exception):
    """A stream that ended before the model said it was finished."""


class _BadResponse(Exception):
    """A response without choices or without a message: the server answered, but not like a chat model."""


class _OutOfTime(Exception):
    """The call's time (attempt timeout, total timeout or the caller's deadline) ran out."""


def _http_timeout(per_attempt: float, left: float) -> float:
    """The HTTP client's timeout: whole seconds (rounded up), because litellm caches one client (and its connection
    pool) per timeout value; a float that differs on every call would open a new connection each time. So a call
    may overrun its deadline by up to a second. (Running each call in a watchdog thread for an exact bound was
    measured: a batch of 32 took 1.3 s instead of 0.3 s.) The HTTP timeout is per read: a server that keeps
    trickling bytes of one non-streamed response is not cut; a trickling stream is, between chunks."""
    return per_attempt if left >= per_attempt else float(max(1, math.ceil(left)))


# litellm reports a 200 response it could not parse as a 500 "InternalServerError"; its text gives it away.
_UNPARSED = ("Received response - <APIResponse [200", "Invalid response object", "Expecting value: line")


def _unparsed(exc: BaseException) -> bool:
    text = str(exc)
    return any(m in text for m in _UNPARSED)


def _is_retryable(exc: BaseException) -> bool:
    return not _unparsed(exc) and any(c.__name__ in _RETRYABLE for c in type(exc).__mro__)


def _refused(exc: BaseException) -> bool:
    """Nothing listens where the call went (connection refused, unknown host): an httpx ConnectError in the cause
    chain, which litellm wraps as APIConnectionError for some providers and as InternalServerError("Connection
    error.") for the OpenAI client. A connection dropped after it was made is no ConnectError."""
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 10:
        if isinstance(e, ConnectionRefusedError) or type(e).__name__ == "ConnectError":
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


_LOCAL_PROVIDERS = ("ollama", "ollama_chat", "lm_studio", "llamafile", "hosted_vllm", "vllm", "xinference", "openai")
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "[::1]", "::1", "host.docker.internal")


def _unreachable_hint(model: str, api_base: str | None) -> str:
    """What to do when no server answers: start the local model server, or point api_base at it."""
    import os
    from urllib.parse import urlparse

    provider = model.split("/", 1)[0] if "/" in model else ""
    env = "OLLAMA_API_BASE" if provider.startswith("ollama") else f"{provider.upper()}_API_BASE" if provider else ""
    where = api_base or (os.environ.get(env) if env else None)
    if where is None and provider.startswith("ollama"):
        where = "http://localhost:11434"  # litellm's default for Ollama
    host = (urlparse(where).hostname or "") if where else ""
    setting = f"api_base= (or the {env} environment variable)" if env else "api_base="
    if provider.startswith("ollama"):
        return (
            f"nothing answers at {where}: start Ollama (`ollama serve`, then `ollama pull "
            f"{model.split('/', 1)[1]}`) or set {setting} to where it runs"
        )
    if where and (host in _LOCAL_HOSTS or provider in _LOCAL_PROVIDERS[2:]):
        return f"nothing answers at {where}: start the local model server there, or set {setting} to where it runs"
    if where:
        return f"nothing answers at {where}: check the address ({setting}) and the network"
    return "the server could not be reached: check the network, or set api_base= for a self-hosted model"


def _kind(exc: BaseException) -> str:
    if _unparsed(exc):
        return "bad_response"
    if type(exc).__name__ in ("InternalServerError", "APIConnectionError") and _refused(exc):
        return "connection"
    for c in type(exc).__mro__:
        if c.__name__ in _KINDS:
            return _KINDS[c.__name__]
    return "error"


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "litellm_response_headers", None) or getattr(getattr(exc, "response", None), "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: not worth parsing, use our own backoff
        return None


def _message(exc: BaseException, target: _Target, attempts: int, api_base: str | None = None) -> str:
    text = str(exc)
    if target.local and "RlmjException - " in text:  # our own provider's message, without litellm's wrapping
        text = text.split("RlmjException - ", 1)[1]
    text = _redact(text.strip())
    advice = {
        "auth": "check the API key in the environment",
        "rate_limit": "rate limited: wait or lower concurrency",
        "timeout": "the server did not answer in time (each call is bounded by Models.timeout_s per attempt, "
        "total_timeout_s with retries, and what is left of the run's budget or REPL step)",
        "bad_response": "the server answered, but not with a chat completion: check the model and api_base",
        "connection": "the server could not be reached or dropped the connection",
        "server": "the provider had a server error",
        "not_found": "check the model name",
    }.get(_kind(exc))
    if _kind(exc) == "connection" and not target.local and _refused(exc):
        tried = f"after {attempts} attempts, " if attempts > 1 else ""
        return f"{target.name}: {text} ({tried}{_unreachable_hint(target.name, api_base)})"
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    return f"{target.name}: {text}" + (f" ({advice}{tried})" if advice else tried)


class _StreamAcc:
    """Collects a stream's chunks, passes text pieces on, and notices a stream that never finished."""

    def __init__(self, on_delta: Callable[[str], Any] | None):
        self.on_delta = on_delta
        self.chunks: list = []
        self.finished = False

    def feed(self, chunk) -> None:
        self.chunks.append(chunk)
        choice = chunk.choices[0] if chunk.choices else None
        if choice is None:
            return
        piece = getattr(choice.delta, "content", None)
        if piece and self.on_delta is not None:
            self.on_delta(piece)
        self.finished = self.finished or bool(choice.finish_reason)

    def result(self, litellm, messages: list[dict]):
        if not self.finished:
            raise _Dropped(f"stream ended after {len(self.chunks)} chunks without a finish reason")
        return litellm.stream_chunk_builder(self.chunks, messages=messages)


# --- the client ------------------------------------------------------------------------------------------------


class Models:
    """Calls models through litellm with retries, timeouts, usage and cost.

    retries: extra attempts for transient failures; timeout_s: per attempt; total_timeout_s: the whole call with its
    retries (both also cut to a `deadline=` given to a call); cost_per_token: {model name:
    (usd per input token, usd per output token)} overriding litellm's price map (keys are the names callers use).
    backoff_s/max_backoff_s: exponential backoff base and cap (a Retry-After header is honoured up to the cap).
    """

    def __init__(
        self,
        *,
        retries: int = 3,
        timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        total_timeout_s: float = DEFAULT_CALL_TOTAL_S,
        cost_per_token: dict[str, tuple[float, float]] | None = None,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ):
        self.retries = retries
        self.timeout_s = timeout_s
        self.total_timeout_s = total_timeout_s
        self.cost_per_token = dict(cost_per_token or {})
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._session = uuid.uuid4().hex[:12]  # script/replay positions belong to this instance
        self._checked: set[tuple[str, bool]] = set()

    # -- checks ---------------------------------------------------------------------------------------------
    def check(self, model: str, *, api_base: str | None = None, role: str = "root") -> None:
        """Raise ModelError early (no network): unknown provider, missing API key env var, missing script file."""
        target = _resolve(model, role, self._session)
        key = (model, bool(api_base))
        if key in self._checked:
            return
        if target.local:
            self._check_local(target)
        else:
            self._check_hosted(target, api_base)
        self._checked.add(key)

    def _check_local(self, target: _Target) -> None:
        kind, _, _, path = target.litellm_model.split("/", 4)[1:]
        if kind in ("script", "replay") and not Path(path).is_file():
            raise ModelError(f"{target.name}: no such file {path}", model=target.name, kind="config")

    def _check_hosted(self, target: _Target, api_base: str | None) -> None:
        litellm = load_litellm()
        try:
            _, provider, _, _ = litellm.get_llm_provider(target.litellm_model)
        except Exception:
            raise ModelError(
                f"unknown model {target.name!r}: litellm cannot tell its provider. Use 'provider/model' (e.g. "
                "'openai/gpt-4o-mini', 'anthropic/claude-…', 'ollama/llama3', or 'openai/NAME' with api_base=… for "
                "an OpenAI-compatible server), or 'offline' for the rule-based demo model",
                model=target.name,
                kind="unknown_model",
            ) from None
        if api_base:  # a self-hosted endpoint: a key is optional
            return
        missing = litellm.validate_environment(target.litellm_model).get("missing_keys") or []
        # Only providers whose auth is plain API keys are refused here; cloud credential chains (AWS, GCP) and
        # local servers (ollama's *_API_BASE) have other ways to authenticate.
        if missing and all(_KEYLIKE.search(k) for k in missing):
            names = " and ".join(missing)
            raise ModelError(
                f"{target.name}: set {names} in the environment (no key found for provider "
                f"{provider!r}; keys are read only from the environment)",
                model=target.name,
                kind="missing_key",
            )

    # -- calls ----------------------------------------------------------------------------------------------
    def _prepare(self, model: str, messages: list[dict], kw: dict) -> tuple[_Target, dict, Callable | None]:
        if "api_key" in kw:
            raise ModelError(
                f"{model}: api_key= is not accepted; set the provider's key in the environment",
                model=model,
                kind="config",
            )
        role = kw.pop("role", "root")
        on_delta = kw.pop("on_delta", None)
        api_base = kw.get("api_base") or kw.get("base_url")
        self.check(model, api_base=api_base, role=role)
        target = _resolve(model, role, self._session)
        litellm = load_litellm()
        call = {
            "model": target.litellm_model,
            "messages": messages,
            "timeout": self.timeout_s,
            "num_retries": 0,
            "max_retries": 0,
            **kw,
        }
        if api_base and not target.local and litellm.validate_environment(target.litellm_model).get("missing_keys"):
            call["api_key"] = "no-key-needed"  # the OpenAI client insists on some key; a local server ignores it
        if call.get("stream"):
            call.setdefault("stream_options", {"include_usage": True})
        return target, call, on_delta

    def complete(self, model: str, messages: list[dict], *, deadline: float | None = None, **kw) -> Completion:
        """One blocking call. kw go to litellm (temperature, max_tokens, api_base, stream, …) except:
        role ("root" | "sub", for our local models) and on_delta (with stream=True: called with each text piece;
        after a retried drop the new attempt's pieces follow, and Completion.text is the authoritative text).
        deadline: a time.monotonic() value the call (retries included) must end by."""
        target, call, on_delta = self._prepare(model, messages, kw)
        litellm = load_litellm()
        start, attempt = time.monotonic(), 0
        end = start + self.total_timeout_s if deadline is None else min(deadline, start + self.total_timeout_s)
        while True:
            attempt += 1
            left = end - time.monotonic()
            try:
                if left <= 0:
                    raise _OutOfTime("no time left for the call (budget or step time used up)")

                timed = {**call, "timeout": _http_timeout(self.timeout_s, left)}
                if timed.get("stream"):
                    acc = _StreamAcc(on_delta)
                    for chunk in litellm.completion(**timed):
                        acc.feed(chunk)
                        if time.monotonic() > end:  # a stream that trickles must not outlive the call's time
                            raise _OutOfTime("the stream was still going when the call's time ran out")
                    resp = acc.result(litellm, messages)
                else:
                    resp = litellm.completion(**timed)
                return self._completion(litellm, target, resp, start, attempt)
            except Exception as exc:
                delay = self._on_failure(exc, target, attempt, end, call.get("api_base") or call.get("base_url"))
            time.sleep(delay)

    async def acomplete(self, model: str, messages: list[dict], *, deadline: float | None = None, **kw) -> Completion:
        """complete() for asyncio code (same arguments)."""
        target, call, on_delta = self._prepare(model, messages, kw)
        litellm = load_litellm()
        start, attempt = time.monotonic(), 0
        end = start + self.total_timeout_s if deadline is None else min(deadline, start + self.total_timeout_s)
        while True:
            attempt += 1
            call["timeout"] = _http_timeout(self.timeout_s, end - time.monotonic())
            try:
                if end <= time.monotonic():
                    raise _OutOfTime("no time left for the call (budget or step time used up)")
                if call.get("stream"):
                    acc = _StreamAcc(on_delta)
                    async for chunk in await litellm.acompletion(**call):
                        acc.feed(chunk)
                    resp = acc.result(litellm, messages)
                else:
                    resp = await litellm.acompletion(**call)
                return self._completion(litellm, target, resp, start, attempt)
            except Exception as exc:
                delay = self._on_failure(exc, target, attempt, end, call.get("api_base") or call.get("base_url"))
            await asyncio.sleep(delay)

    def batch(
        self, model: str, prompts: list[list[dict]], *, concurrency: int = BATCH_CONCURRENCY, **kw
    ) -> list[Completion | ModelError]:
        """Many calls at once, at most `concurrency` in flight; results in the order of `prompts`; a failed call is
        its ModelError in the list, the others go on. Threads (not asyncio), so it works inside Jupyter's loop."""
        if not prompts:
            return []

        def one(messages: list[dict]) -> Completion | ModelError:
            try:
                return self.complete(model, messages, **dict(kw))
            except ModelError as e:
                return e

        ex = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(prompts))), thread_name_prefix="rlmj")
        try:
            return list(ex.map(one, prompts))
        finally:
            # On Ctrl-C do not wait for the calls still queued: cancel them (those in flight end at their timeout).
            ex.shutdown(wait=False, cancel_futures=True)

    # -- helpers --------------------------------------------------------------------------------------------
    def _on_failure(
        self, exc: Exception, target: _Target, attempt: int, end: float | None = None, api_base: str | None = None
    ) -> float:
        """Raise ModelError when the failure is final; else log and return how long to wait before retrying."""
        if isinstance(exc, ModelError):
            raise exc
        out_of_time = end is not None and time.monotonic() + self.backoff_s >= end
        if not _is_retryable(exc) or attempt > self.retries or out_of_time:
            kind = "local" if target.local and _kind(exc) == "bad_request" else _kind(exc)
            raise ModelError(
                _message(exc, target, attempt, api_base), model=target.name, kind=kind, retryable=_is_retryable(exc)
            ) from None
        hinted = _retry_after(exc)
        delay = hinted if hinted is not None else self.backoff_s * 2 ** (attempt - 1) * (0.75 + random.random() / 2)
        delay = min(delay, self.max_backoff_s)
        if end is not None:
            delay = min(delay, max(0.0, end - time.monotonic() - 0.01))
        log.info("%s: attempt %d failed (%s), retrying in %.2f s", target.name, attempt, _kind(exc), delay)
        return delay

    def _completion(self, litellm, target: _Target, resp, start: float, attempt: int) -> Completion:
        usage = getattr(resp, "usage", None)
        tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        choices = getattr(resp, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise _BadResponse("the server's response has no choices (not a chat completion)")
        choice = choices[0]
        details = getattr(usage, "prompt_tokens_details", None)
        cache_read = getattr(usage, "cache_read_input_tokens", None) or getattr(details, "cached_tokens", None)
        cache_write = getattr(usage, "cache_creation_input_tokens", None)
        return Completion(
            text=choice.message.content or "",
            model=target.name,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=self._cost(litellm, target, resp, tokens_in, tokens_out),
            latency_s=time.monotonic() - start,
            finish_reason=choice.finish_reason,
            attempts=attempt,
            cache_read=int(cache_read or 0) or None,
            cache_write=int(cache_write or 0) or None,
        )

    def _cost(self, litellm, target: _Target, resp, tokens_in: int, tokens_out: int) -> float | None:
        price = self.cost_per_token.get(target.name) or self.cost_per_token.get(target.litellm_model)
        if price is not None:
            return tokens_in * price[0] + tokens_out * price[1]
        if target.local:
            return 0.0
        hidden = getattr(resp, "_hidden_params", None) or {}
        cost = hidden.get("response_cost")
        if cost is None and "response_cost" not in hidden:  # litellm tried already when the key is there
            with contextlib.suppress(Exception):  # a model missing from the price map has an unknown cost
                cost = litellm.completion_cost(completion_response=resp, model=target.litellm_model)
        return float(cost) if cost is not None else None


_default: Models | None = None


def default_models() -> Models:
    global _default
    if _default is None:
        _default = Models()
    return _default


def sub_llm(prompt: str, model: str = "offline", **kw: Any) -> Completion:
    """One sub-model call on a single user prompt (sub role for "offline" and "replay:"), with its usage.
    kw: `models=` a Models instance to use; `system=` a system prompt; anything else goes to Models.complete."""
    models = kw.pop("models", None) or default_models()
    system = kw.pop("system", None)
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    kw.setdefault("role", "sub")
    return models.complete(model, messages, **kw)
