"""Secrets never leak: recognising secret names and masking secret values.

Secrets (vault values, restic passwords, tokens, keys) must never reach the
ledger, run logs, reports or the ansible-runner artifacts kept on disk. A
:class:`SecretSet` holds the values known to be secret and masks them in
text and in JSON-like data, in every form in which a tool may print them:
plain, JSON-escaped, Python-repr-escaped, URL-quoted, HTML-escaped, shell
quoted, hex and base64 (standard and URL-safe, padded or not, alone or inside
a larger base64 blob), in any letter case, and with its whitespace folded
onto several lines. :func:`is_secret_name` recognises secret variables by
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
    # Passwords and passphrases.
    ("password", True),
    ("passwd", True),
    ("passphrase", True),
    ("*_password*", True),
    ("*_passwd*", True),
    ("*_passphrase*", True),
    ("*_pass", True),
    ("*_pw", True),
    # Secrets, tokens and authorization headers.
    ("secret", True),
    ("secrets", True),
    ("secret_*", True),
    ("*_secret*", True),
    ("token", True),
    ("tokens", True),
    ("*_token", True),
    ("*_tokens", True),
    ("*_token_*", True),
    ("authorization", True),
    ("*_authorization", True),
    ("cookie", True),
    ("*_cookie", True),
    # Keys: API, private, access (with their ids: an access key id names one key pair).
    ("api_key", True),
    ("apikey", True),
    ("*_api_key", True),
    ("*_apikey", True),
    ("private_key", True),
    ("*_private_key", True),
    ("*access_key*", True),
    ("*_key_id", True),
    ("account_key", True),
    ("*_account_key", True),
    ("*_signing_key", True),
    ("*_encryption_key", True),
    ("*_session_key", True),
    ("vault_*", True),
    ("*credential*", True),
)
"""Glob patterns on lowercased key names (``-`` read as ``_``): the first match decides."""

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
        secret.upper(),
        secret.lower(),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
        repr(raw)[2:-1],
        raw.hex(),
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


def _form_pattern(form: str) -> str:
    # A run of whitespace inside a secret matches any run of whitespace: a formatter
    # that folds long lines (YAML, textwrap) breaks a secret at its spaces. Leading and
    # trailing whitespace stays exact, so that the text around a secret is kept.
    lead, core, trail = _EDGES.fullmatch(form).groups()  # type: ignore[union-attr]
    inner = r"\s+".join(re.escape(part) for part in _WHITESPACE.split(core))
    return re.escape(lead) + inner + re.escape(trail)


_WHITESPACE = re.compile(r"\s+")
_EDGES = re.compile(r"(\s*)(.*?)(\s*)", re.DOTALL)


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
    def _alternatives(self) -> str | None:
        # The forms are lowercased, and so is the text searched: ignoring case keeps
        # hex digits, percent escapes and a secret printed in upper or lower case
        # masked, where re.IGNORECASE would make the search many times slower.
        forms = {form.lower() for secret in self.values for form in _forms(secret)}
        if not forms:
            return None
        # Longest first: at one position the alternation takes the first form that
        # matches, so a secret that contains another is masked whole.
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        return "|".join(map(_form_pattern, ordered))

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        alternatives = self._alternatives
        return None if alternatives is None else re.compile(alternatives)

    @cached_property
    def _caseless_pattern(self) -> re.Pattern[str] | None:
        # For the rare text whose lowercase changes its length (offsets would shift).
        alternatives = self._alternatives
        return None if alternatives is None else re.compile(alternatives, re.IGNORECASE)

    def _spans(self, text: str) -> list[list[int]]:
        """Given text, return the [start, end) spans of every form of every secret, merged."""
        spans: list[list[int]] = []
        if self._alternatives is None or not text:
            return spans
        subject = text.lower()
        pattern = self._pattern
        if len(subject) != len(text):
            subject, pattern = text, self._caseless_pattern
        assert pattern is not None
        position = 0
        while (match := pattern.search(subject, position)) is not None:
            start, end = match.span()
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
            # Searching again from the next character finds a secret that begins
            # inside this one and ends after it.
            position = start + 1
        return spans

    def mask_text(self, text: str) -> str:
        """Given text, return it with every form of every secret replaced by :data:`MASK`.

        Overlapping occurrences (two secrets sharing characters) are masked as one span.
        """
        spans = self._spans(text)
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

    def _mask_words(self, words: list[str] | tuple[str, ...]) -> list[str]:
        """Given a list of strings, return it masked, a secret split across items included.

        A command's argv (``cmd`` in a result, ``stdout_lines``) splits a
        secret holding spaces or newlines into several items: every item that
        overlaps a secret found in the items joined by spaces becomes :data:`MASK`.
        """
        spans = self._spans(" ".join(words))
        masked = []
        start = 0
        for word in words:
            end = start + len(word)
            overlaps = any(begin < end and start < finish for begin, finish in spans)
            masked.append(MASK if overlaps and word else self.mask_text(word))
            start = end + 1
        return masked

    def mask_data(self, data: Any) -> Any:
        """Given JSON-like data, return a deep copy with every secret masked.

        Strings (keys included) are masked as text; the value of a key whose
        name :func:`is_secret_name` recognises becomes :data:`MASK` whatever it
        is; a number whose text is a secret becomes :data:`MASK`; in a list of
        strings, the items a secret is split across become :data:`MASK`. Mappings
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
            if len(data) > 1 and all(isinstance(item, str) for item in data):
                return type(data)(self._mask_words(data))
            return type(data)(self.mask_data(item) for item in data)
        # A boolean's text ("True", "False") is shorter than any secret: never masked.
        if isinstance(data, int | float):
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
    and the passwords embedded in URLs
    (``WEBMG_LEDGER_URL=postgresql://user:password@host/db``).
    """
    values: list[str] = []
    for name, value in environ.items():
        if is_secret_name(name):
            values.append(value)
        elif name.upper().endswith(_URL_NAME_SUFFIXES):
            try:
                password = urlsplit(value).password
            except ValueError:
                continue
            if password:
                values.extend((password, unquote(password)))
    return SecretSet.of(values)
