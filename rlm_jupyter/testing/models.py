"""`ServerModels`: the real model client (litellm and all), pointed at a local server such as `ScriptedServer`.

Tests, benchmarks and notebooks that exercise the real call path (retries, timeouts, usage, cost) against a scripted
server use this instead of each writing their own subclass."""

from __future__ import annotations

from ..engine.models import Models


class ServerModels(Models):
    """`Models` whose every call goes to `base_url` unless the call names its own `api_base`.

    Defaults suit tests: no retries and a 20 s per-call timeout; any `Models` option can be passed
    (`ServerModels(url, retries=2, backoff_s=0.05)`, `cost_per_token={...}` for a non-zero cost)."""

    def __init__(self, base_url: str, **options):
        super().__init__(**{"retries": 0, "timeout_s": 20, **options})
        self.base_url = base_url

    def check(self, model, **kw):
        kw.setdefault("api_base", self.base_url)
        super().check(model, **kw)

    def complete(self, model, messages, **kw):
        kw.setdefault("api_base", self.base_url)
        return super().complete(model, messages, **kw)

    def batch(self, model, prompts, **kw):
        kw.setdefault("api_base", self.base_url)
        return super().batch(model, prompts, **kw)
