"""Secret redaction for everything a run hands out: trace events, `Run.answer`, `ask` output, notebook views.

The secrets are the values of environment variables named like keys (`*KEY*`, `*TOKEN*`, `*SECRET*`,
`*PASSWORD*`, `*CREDENTIAL*`, `*AUTH*`; at least 8 characters), which is where the model clients read their API
keys, plus any values given explicitly. Model code that gets hold of a key (it should not: docs/isolation.md) would
try to smuggle it out encoded, so each secret is looked for, forwards and reversed, as:
  raw · hex (lower/upper, plain or `\\x`-escaped) · base64 and urlsafe base64 at the three byte alignments a value
  can have inside a longer encoded text · percent-encoded (as URLs quote it, and every byte) · rot13.
A match is replaced by `[REDACTED]` (a base64 match with the up to 4 neighbouring characters that mix in the
secret's first and last bytes). Also replaced: strings shaped like `sk-…` keys and `Bearer …`/`Basic …` headers.

What it cannot catch: encodings not listed (compression, encryption, a secret split across two events or
interleaved with other text, arithmetic on its characters). It is the last line of defence; the first is that the
worker never sees a key (docs/isolation.md).
"""

from __future__ import annotations

import base64
import codecs
import os
import re
from typing import Any
from urllib.parse import quote

SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.I)
SECRET_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_-]{16,}|(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{16,})")
MIN_SECRET = 8  # shorter values are too likely to occur by chance
MIN_PIECE = 8  # an encoded fragment shorter than this is not searched for (false positives)
MARK = "[REDACTED]"
_B64_EDGE = "[A-Za-z0-9+/_=-]{0,4}"


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    return sorted({v for k, v in env.items() if SECRET_NAME.search(k) and len(v) >= MIN_SECRET}, key=len, reverse=True)


def encodings(secret: str) -> tuple[list[str], list[str]]:
    """(literal forms, base64 cores) under which `secret` is looked for."""
    literal: set[str] = set()
    cores: set[str] = set()
    for v in (secret, secret[::-1]):
        b = v.encode("utf-8")
        h = b.hex()
        literal.update(
            {
                v,
                h,
                h.upper(),
                "".join(f"\\x{c:02x}" for c in b),
                quote(v, safe=""),
                "".join(f"%{c:02x}" for c in b),
                "".join(f"%{c:02X}" for c in b),
                codecs.encode(v, "rot13"),
            }
        )
        for k in range(3):  # the secret starting at byte 0, 1 or 2 of a base64 group
            for enc in (base64.b64encode, base64.urlsafe_b64encode):
                e = enc(b"\0" * k + b).decode("ascii").rstrip("=")
                core = e[(k * 4 + 2) // 3 :]  # drop the characters that also encode the padding bytes
                core = core[: len(core) - (len(core) % 4 != 0)]  # and the last, partial one
                if len(core) >= MIN_PIECE:
                    cores.add(core)
    return [s for s in literal if len(s) >= MIN_PIECE], sorted(cores)


class Redactor:
    """Replaces secret values in their common encodings, and key/auth-header shapes, in every string of a value
    (dicts and lists are walked)."""

    def __init__(self, secrets: list[str] | None = None):
        self.secrets = secret_values() if secrets is None else [s for s in secrets if s]
        literal: set[str] = set()
        cores: set[str] = set()
        for s in self.secrets:
            lit, core = encodings(s)
            literal.update(lit)
            cores.update(core)
        parts = [re.escape(x) for x in sorted(literal, key=len, reverse=True)]
        parts += [_B64_EDGE + re.escape(c) + _B64_EDGE for c in sorted(cores, key=len, reverse=True)]
        self._pattern = re.compile("|".join(parts)) if parts else None
        # a cheap first test: every form contains one of these short pieces (hex and base64 are case-sensitive)
        self._probes = {x[:MIN_PIECE] for x in literal} | {c[:MIN_PIECE] for c in cores}

    def _maybe(self, s: str) -> bool:
        """Could `s` hold a secret? Short strings (most of a trace's) by looking up each window in the probe set,
        long ones by searching each probe."""
        if len(s) < MIN_PIECE:
            return False
        if len(s) <= 4 * len(self._probes):
            probes = self._probes
            return any(s[i : i + MIN_PIECE] in probes for i in range(len(s) - MIN_PIECE + 1))
        return any(p in s for p in self._probes)

    def text(self, s: str) -> str:
        if self._pattern is not None and self._maybe(s):
            s = self._pattern.sub(MARK, s)
        return SECRET_SHAPES.sub(MARK, s) if ("sk-" in s or "earer" in s or "asic" in s) else s

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        return value
