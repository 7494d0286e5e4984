"""Notification targets: the Apprise URLs an escalation step notifies, checked and masked.

A target is an Apprise URL of a supported scheme: e-mail (``mailto://``,
``mailtos://``) or a webhook (``json://``, ``jsons://``, ``form://``,
``forms://``). A secret inside it (an SMTP password, a webhook token) is
written as a vault reference, ``{vault:NAME}``, resolved from the client's
vault only when the notification is sent. What is recorded or shown is the
URL as written with its password, its secret-named query values and every
vault reference masked, so no secret value reaches an entry or an output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from webmg_ops.secrets import MASK, is_secret_name

#: Scheme -> what it reaches: the schemes a contract may name.
SCHEMES: dict[str, str] = {
    "mailto": "e-mail over SMTP",
    "mailtos": "e-mail over SMTP with TLS",
    "json": "webhook, JSON body",
    "jsons": "webhook over HTTPS, JSON body",
    "form": "webhook, form body",
    "forms": "webhook over HTTPS, form body",
}

#: A vault reference inside a URL: ``{vault:webmg_notify_password}``.
VAULT_REFERENCE = re.compile(r"\{vault:([A-Za-z_][A-Za-z0-9_]*)\}")

#: Query parameters whose values are secret although their names match no secret rule
#: (Apprise's own names for a password, a token and a key).
_SECRET_QUERY_NAMES = frozenset({"pass", "pwd", "key", "token", "apikey"})


def check_notify_url(url: str) -> str:
    """Given a target URL as written in a contract, return it.

    Raise ValueError, with the reason, if its scheme is not one of :data:`SCHEMES`,
    it names no host, or a ``{vault:`` reference is malformed.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        supported = ", ".join(f"{name}://" for name in SCHEMES)
        raise ValueError(
            f"notification URL scheme {scheme + '://' if scheme else 'missing'} is not "
            f"supported (supported: {supported})"
        )
    if url.count("{vault:") != len(VAULT_REFERENCE.findall(url)):
        raise ValueError("a vault reference in a notification URL is written {vault:NAME}")
    if not urlsplit(VAULT_REFERENCE.sub("x", url)).hostname:
        raise ValueError(f"notification URL {mask_url(url)} names no host")
    return url


def vault_names(url: str) -> list[str]:
    """Given a target URL, return the vault variables it refers to, in order."""
    return VAULT_REFERENCE.findall(url)


def resolve_url(url: str, vault: Mapping[str, object]) -> str:
    """Given a target URL and the client's decrypted vault variables, return the URL with
    each vault reference replaced by its value.

    Raise KeyError naming the first variable the vault lacks (never a value).
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in vault or vault[name] is None:
            raise KeyError(name)
        return str(vault[name])

    return VAULT_REFERENCE.sub(value, url)


def mask_url(url: str) -> str:
    """Given a target URL as written, return it with every secret masked: vault
    references, the password of its user part, and query values whose names are
    secret (``pass``, ``token``, ``*_password`` ...)."""
    masked = VAULT_REFERENCE.sub(MASK, url)
    scheme, separator, rest = masked.partition("://")
    if not separator:
        return masked
    authority, slash, tail = rest.partition("/")
    if "?" in authority:
        authority, question, query_tail = authority.partition("?")
        tail = question + query_tail
        slash = ""
    user, at, host = authority.rpartition("@")
    if at and ":" in user:
        user = user.split(":", 1)[0] + ":" + MASK
    authority = f"{user}{at}{host}"
    path, question, query = tail.partition("?")
    if question:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(
            f"{name}={MASK if _secret_query(name) else value}" for name, value in pairs
        )
    return f"{scheme}://{authority}{slash}{path}{question}{query}"


def _secret_query(name: str) -> bool:
    return name.lower() in _SECRET_QUERY_NAMES or is_secret_name(name)
