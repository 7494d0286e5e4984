"""Secrets never leak: recognising secret names and masking secret values.

Secrets (vault values, restic passwords, tokens, keys) must never reach the
ledger, run logs, reports or the ansible-runner artifacts kept on disk. A
:class:`SecretSet` holds the values known to be secret and masks them in
text and in JSON-like data, in every form in which a tool may print them:
plain, JSON-escaped, Python-repr-escaped, URL-quoted, HTML-escaped, shell
quoted and base64 (standard and URL-safe, padded or not, alone or inside a
larger base64 blob). :func:`is_secret_name` recognises secret variables by
their key name, so that their values are masked even when nobody declared
them.
"""

from __future__ import annotations

import base64
import html
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

MASK = "********"
"""What every masked secret becomes."""

MIN_SECRET_LENGTH = 6
"""Shorter values are not masked.

Masking a value of a few characters would replace every occurrence of, say,
``admin`` or ``1234`` in unrelated text, destroying logs while protecting
nothing: so short a value is no real secret and is guessed, not leaked.
"""

SECRET_NAME_RULES: tuple[tuple[str, bool], ...] = (
    # Paths to secrets are not secrets, and masking them would hide which file was used.
    ("*_file", False),
    ("*_path", False),
    ("*_dir", False),
    ("password", True),
    ("passwd", True),
    ("passphrase", True),
    ("*_password", True),
    ("*_passwd", True),
    ("*_passphrase", True),
    ("*_pass", True),
    ("secret", True),
    ("secrets", True),
    ("secret_key", True),
    ("*_secret*", True),
    ("token", True),
    ("*_token", True),
    ("api_key", True),
    ("*_api_key", True),
    ("private_key", True),
    ("*_private_key", True),
    ("access_key", True),
    ("*_access_key", True),
    ("*_secret_key", True),
    ("account_key", True),
    ("*_account_key", True),
    ("vault_*", True),
    ("*credential*", True),
)
"""Glob patterns on lowercased key names (``-`` read as ``_``): the first match decides."""

ENVIRONMENT_SECRET_NAMES: frozenset[str] = frozenset({"AWS_ACCESS_KEY_ID"})
"""Environment variables that hold secrets although their names do not say so."""

_URL_NAME_SUFFIXES: tuple[str, ...] = ("_URL", "_URI", "_DSN")


def is_secret_name(name: str) -> bool:
    """Given a variable or key name, return whether its value is a secret.

    The name is matched case-insensitively against :data:`SECRET_NAME_RULES`;
    names that match no rule are not secret.
    """
    normalized = name.lower().replace("-", "_")
    return next(
        (secret for pattern, secret in SECRET_NAME_RULES if fnmatchcase(normalized, pattern)),
        False,
    )


def _base64_cores(raw: bytes) -> list[bytes]:
    # A secret inside a larger blob starts at byte offset 0, 1 or 2 of a 3-byte group;
    # for each alignment keep the base64 characters that depend on the secret alone.
    cores = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        first = -(-8 * offset // 6)
        last = 8 * (offset + len(raw)) // 6
        cores.append(encoded[first:last])
    return cores


def _forms(secret: str) -> set[str]:
    raw = secret.encode()
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
        repr(raw)[2:-1],
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
        html.escape(secret),
        shlex.quote(secret),
    }
    for encoded in (base64.b64encode(raw), *_base64_cores(raw)):
        for variant in (encoded, encoded.translate(bytes.maketrans(b"+/", b"-_"))):
            forms.add(variant.decode())
            forms.add(variant.rstrip(b"=").decode())
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


@dataclass(frozen=True)
class SecretSet:
    """Values known to be secret, and the means to mask them.

    Build one with :meth:`of`; the masking pattern is compiled once, on first use.
    """

    values: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def of(cls, values: Iterable[object]) -> SecretSet:
        """Given candidate secret values, return the set of those long enough to mask.

        Strings are kept as they are and numbers (not booleans) as their text;
        anything else, and any value shorter than :data:`MIN_SECRET_LENGTH`, is ignored.
        """
        kept = set()
        for value in values:
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = str(value)
            if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
                kept.add(value)
        return cls(frozenset(kept))

    def union(self, *others: SecretSet) -> SecretSet:
        """Given other secret sets, return one set holding the secrets of all."""
        return SecretSet(self.values.union(*(other.values for other in others)))

    def __bool__(self) -> bool:
        return bool(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return f"SecretSet(<{len(self.values)} secrets>)"

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        forms = set().union(*(_forms(secret) for secret in self.values))
        if not forms:
            return None
        # Longest first: at one position the alternation takes the first form that
        # matches, so a secret that contains another is masked whole.
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        return re.compile("|".join(map(re.escape, ordered)))

    def mask_text(self, text: str) -> str:
        """Given text, return it with every form of every secret replaced by :data:`MASK`.

        Overlapping occurrences (two secrets sharing characters) are masked as one span.
        """
        pattern = self._pattern
        if pattern is None or not text:
            return text
        spans: list[list[int]] = []
        position = 0
        while (match := pattern.search(text, position)) is not None:
            start, end = match.span()
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
            # Searching again from the next character finds a secret that begins
            # inside this one and ends after it.
            position = start + 1
        if not spans:
            return text
        pieces = []
        previous = 0
        for start, end in spans:
            pieces.append(text[previous:start])
            pieces.append(MASK)
            previous = end
        pieces.append(text[previous:])
        return "".join(pieces)

    def mask_data(self, data: Any) -> Any:
        """Given JSON-like data, return a deep copy with every secret masked.

        Strings (keys included) are masked as text; the value of a key whose
        name :func:`is_secret_name` recognises becomes :data:`MASK` whatever it
        is; a number whose text is a secret becomes :data:`MASK`. Mappings
        become dicts; lists and tuples keep their type; other values are
        returned as they are.
        """
        if isinstance(data, str):
            return self.mask_text(data)
        if isinstance(data, Mapping):
            return {
                (self.mask_text(key) if isinstance(key, str) else key): (
                    MASK if isinstance(key, str) and is_secret_name(key) else self.mask_data(value)
                )
                for key, value in data.items()
            }
        if isinstance(data, list | tuple):
            return type(data)(self.mask_data(item) for item in data)
        if isinstance(data, int | float) and not isinstance(data, bool):
            text = str(data)
            return MASK if self.mask_text(text) != text else data
        return data


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _secret_values(variables: Any) -> Iterable[Any]:
    if isinstance(variables, Mapping):
        for key, value in variables.items():
            if isinstance(key, str) and is_secret_name(key):
                yield from _leaves(value)
            else:
                yield from _secret_values(value)
    elif isinstance(variables, list | tuple):
        for item in variables:
            yield from _secret_values(item)


def collect_secrets(variables: Mapping[str, Any]) -> SecretSet:
    """Given variables (nested mappings and lists), return the secrets they hold.

    A secret is any string or number found under a key that
    :func:`is_secret_name` recognises, at any depth (everything beneath such
    a key counts). Values decrypted from an Ansible vault or taken from the
    environment are the caller's to add, with :meth:`SecretSet.of`.
    """
    return SecretSet.of(_secret_values(variables))


def secrets_from_environment(environ: Mapping[str, str]) -> SecretSet:
    """Given environment variables, return the secrets they hold.

    These are the values of variables with a secret name (``RESTIC_PASSWORD``,
    ``AWS_SECRET_ACCESS_KEY``, ``WEBMG_API_TOKEN``), of
    :data:`ENVIRONMENT_SECRET_NAMES`, and the passwords embedded in URLs
    (``WEBMG_LEDGER_URL=postgresql://user:password@host/db``).
    """
    values: list[str] = []
    for name, value in environ.items():
        if is_secret_name(name) or name.upper() in ENVIRONMENT_SECRET_NAMES:
            values.append(value)
        elif name.upper().endswith(_URL_NAME_SUFFIXES):
            try:
                password = urlsplit(value).password
            except ValueError:
                continue
            if password:
                values.extend((password, unquote(password)))
    return SecretSet.of(values)
