"""``report --publish``: a written report uploaded to S3, its links mailed to the owner.

Once :func:`~webmg_ops.service.report.write_client_report` has written and recorded
a report, :func:`publish_client_report` uploads its three files (HTML, PDF, the
checkpoint note) to the client's offsite target under
``<prefix><client>/reports/<period>/`` (checksummed and verified, as the run reports
are), signs a presigned GET link per file valid for the policy's
``reporting.link_days``, mails the links to the contract's business owner, and
records a ``report-published`` entry.

The entry holds the object keys, their sha256 and the links' expiry, never the links:
a link grants read access to whoever holds it until it expires, and the ledger is
kept forever. The links go to stdout, the ``--json`` document and the mail only.

The mail goes through the escalation path's own mail sender: the first ``mailto://``
or ``mailtos://`` URL among the targets of the contract's first escalation step, else
among the agency's on-call targets (its own contract's first step), its recipients
replaced by the business owner's address. Vault references in that URL are read from
the vault of the contract that names it. A mail that cannot be sent does not undo the
publication: the entry says the owner was not notified, and why (masked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from webmg_ops.ansible.vault import Vault
from webmg_ops.config.clients import AGENCY, Client, load_client
from webmg_ops.config.contract import LINK_DAYS_RANGE
from webmg_ops.config.notify_targets import mask_url, resolve_url, vault_names
from webmg_ops.config.offsite_target import OffsiteTarget
from webmg_ops.config.s3_credentials import OffsiteCredentials, resolve_credentials
from webmg_ops.errors import BadInput, EnvironmentProblem, WebmgError
from webmg_ops.ledger import NewEntry
from webmg_ops.offsite.links import presigned_links
from webmg_ops.offsite.retry import DEFAULT_RETRY, RetryPolicy
from webmg_ops.offsite.upload import publish_files
from webmg_ops.runs.records import REPORT_PUBLISHED
from webmg_ops.secrets import SecretSet
from webmg_ops.service.notify import Sender, send_apprise
from webmg_ops.service.records import ledger_recorder
from webmg_ops.service.tick import agency_targets
from webmg_ops.settings import Settings

#: The folder of a client's published reports, under its offsite prefix.
REPORTS_FOLDER = "reports"

#: The report's files, by the names of the ``report`` document, in upload order.
PUBLISHED_FILES: tuple[str, ...] = ("html", "pdf", "checkpoint")

#: The Apprise e-mail schemes, and the query names that carry recipients.
_MAIL_SCHEMES = ("mailto://", "mailtos://")
_RECIPIENT_QUERY_NAMES = frozenset({"to", "cc", "bcc"})


@dataclass(frozen=True)
class MailTarget:
    """Where the owner's mail goes: the URL as written (vault references unresolved)
    with the owner as its only recipient, and the folder whose vault it reads."""

    url: str
    vault_folder: Path

    @property
    def masked(self) -> str:
        """The URL with its secrets masked: what is recorded and shown."""
        return mask_url(self.url)


def with_recipient(url: str, address: str) -> str:
    """Given an Apprise e-mail URL as written and an address, return the URL sending to
    that address alone: recipients in its path and its ``to``, ``cc`` and ``bcc``
    parameters are dropped; the sender, server and credentials are kept."""
    base, _question, query = url.partition("?")
    scheme, _separator, rest = base.partition("://")
    # The authority ends at the first '/' after any vault reference (whose name holds none).
    authority = rest.split("/", 1)[0]
    kept = [
        pair
        for pair in query.split("&")
        if pair and pair.split("=", 1)[0].lower() not in _RECIPIENT_QUERY_NAMES
    ]
    kept.append(f"to={quote(address, safe='@')}")
    return f"{scheme}://{authority}?{'&'.join(kept)}"


def _first_mail_url(urls: Sequence[str]) -> str | None:
    return next((url for url in urls if url.lower().startswith(_MAIL_SCHEMES)), None)


def owner_mail_target(settings: Settings, client: Client) -> MailTarget | None:
    """Given the settings and a client, return where its business owner's mail goes: the
    first e-mail URL of its first escalation step, else of the agency's on-call targets,
    addressed to the owner; None when the owner has no address or no e-mail URL is found.

    Raise BadInput if the agency's contract fails validation.
    """
    owner = client.contract.business_owner
    if owner is None or not owner.email:
        return None
    steps = client.contract.escalation
    own = _first_mail_url(steps[0].notify) if steps else None
    if own is not None:
        return MailTarget(with_recipient(own, owner.email), client.folder)
    agency = _first_mail_url(agency_targets(settings))
    if agency is not None:
        return MailTarget(with_recipient(agency, owner.email), client.folder.parent / AGENCY)
    return None


def _url_secrets(url: str) -> SecretSet:
    parts = urlsplit(url)
    found: list[object] = [url, parts.password]
    found += [value for _name, value in parse_qsl(parts.query) if len(value) >= 6]
    return SecretSet.of(found)


def _send_mail(
    target: MailTarget, vault: Vault, title: str, body: str, send: Sender, mask: SecretSet
) -> str | None:
    """Send the owner's mail; return None when delivered, else the reason, masked."""
    secrets = mask
    try:
        url = target.url
        if vault_names(url):
            variables = vault.variables(target.vault_folder)
            secrets = secrets.union(SecretSet.of(vault.values(target.vault_folder)))
            try:
                url = resolve_url(url, variables)
            except KeyError as missing:
                return f"the vault of {target.vault_folder.name} lacks {missing.args[0]}"
        secrets = secrets.union(_url_secrets(url))
        error = send(url, title, body)
    except WebmgError as problem:
        return secrets.mask_text(problem.message)
    return None if error is None else secrets.mask_text(error)


def _message(
    client: Client, period: str, links: Mapping[str, str], sha256: Mapping[str, str], until: str
) -> tuple[str, str]:
    owner = client.contract.business_owner
    title = f"[{client.contract.display_name}] Your maintenance report for {period}"
    lines = [
        f"Dear {owner.name}," if owner is not None else "Hello,",
        "",
        f"the maintenance report of {client.contract.display_name} for {period} is ready.",
        f"These links are valid until {until} (UTC); each file's sha256 follows its link.",
        "",
    ]
    for name, link in links.items():
        lines += [f"{name}:", link, f"sha256 {sha256[name]}", ""]
    return title, "\n".join(lines)


def _notify_owner(
    settings: Settings,
    client: Client,
    vault: Vault,
    message: tuple[str, str],
    send: Sender,
    mask: SecretSet,
) -> tuple[MailTarget | None, str | None]:
    """Mail the owner (title, body); return the target used (None: none found) and None
    when delivered, else why not, masked. Never raises: the files are already published."""
    owner = client.contract.business_owner
    if owner is None or not owner.email:
        return None, "the contract names no business owner's e-mail"
    try:
        mail = owner_mail_target(settings, client)
    except WebmgError as problem:
        return None, f"the agency's contract cannot be read: {problem.message}"
    if mail is None:
        return None, "no mailto:// target in the first escalation step nor the agency's on-call"
    title, body = message
    return mail, _send_mail(mail, vault, title, body, send, mask)


def _credentials(client: Client, target: OffsiteTarget, vault: Vault) -> OffsiteCredentials:
    held = (
        {key: str(value) for key, value in vault.variables(client.folder).items()}
        if target.credentials == "vault"
        else None
    )
    return resolve_credentials(target, vault=held)


def _link_days(client: Client) -> int:
    days = int(client.policy.get("reporting.link_days"))
    low, high = LINK_DAYS_RANGE
    if not low <= days <= high:
        raise BadInput(
            f"reporting.link_days is {days}: a presigned link lives {low} to {high} days"
        )
    return days


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def publish_client_report(
    settings: Settings,
    client_name: str,
    written: Mapping[str, Any],
    vault_password_file: Path | None = None,
    *,
    send: Sender = send_apprise,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> dict[str, Any]:
    """Given the settings, a client, the document of the report just written (its
    ``html``, ``pdf``, ``checkpoint`` paths and ``figures.period``), the vault password
    file, the sender of the mail and the upload's retry policy, publish the report and
    return the ``published`` document: the period, where it went, each file's key,
    sha256 and link, the links' expiry, whether the owner was notified (the masked
    target and reason) and the entry's seq.

    Raise EnvironmentProblem, saying the report is kept locally, when the client has
    no offsite target, its keys cannot be had, or S3 is unreachable or refuses a
    file (no entry is recorded; the report's files and ``report-written`` stay);
    BadInput if the link's life in the policy is out of range. A mail that fails is
    no error: it is recorded and returned.
    """
    client = load_client(settings.inventories, client_name)
    period = str(written["figures"]["period"])
    paths = {name: Path(str(written[name])) for name in PUBLISHED_FILES}
    kept = f"the report is kept locally at {paths['html'].parent}"
    target = client.contract.backup.offsite
    if target is None:
        raise EnvironmentProblem(
            f"report not published: {client.name}'s contract names no offsite target "
            f"(backup.offsite); {kept}"
        )
    days = _link_days(client)
    vault = Vault(vault_password_file)
    try:
        credentials = _credentials(client, target, vault)
    except WebmgError as problem:
        raise EnvironmentProblem(f"report not published: {problem.message}; {kept}") from None
    prefix = f"{REPORTS_FOLDER}/{period}"
    result = publish_files(
        target,
        credentials,
        client.name,
        [paths[name] for name in PUBLISHED_FILES],
        prefix,
        retry=retry,
    )
    if not result.ok:
        reasons = "; ".join(sorted({str(item.reason) for item in result.unpublished}))
        raise EnvironmentProblem(
            f"report not published to {target.endpoint} (bucket {target.bucket}): {reasons}; {kept}"
        )
    files = dict(zip(PUBLISHED_FILES, result.files, strict=True))
    life = timedelta(days=days)
    by_key = presigned_links(target, credentials, [item.key for item in files.values()], life)
    links = {name: by_key[item.key].url for name, item in files.items()}
    # The first link to expire dates them all (they are signed within a second or so).
    expiry = min(link.expires_at for link in by_key.values())
    signed_at, expires_at = _utc(expiry - life), _utc(expiry)
    mask = credentials.secret_set()
    mail, reason = _notify_owner(
        settings,
        client,
        vault,
        _message(
            client,
            period,
            {paths[name].name: link for name, link in links.items()},
            {paths[name].name: files[name].sha256 for name in files},
            expires_at,
        ),
        send,
        mask,
    )
    objects = {
        name: {"key": item.key, "sha256": item.sha256, "size": item.size}
        for name, item in files.items()
    }
    payload: dict[str, Any] = {
        "period": period,
        "endpoint": target.endpoint,
        "bucket": target.bucket,
        "objects": objects,
        "link_days": days,
        "signed_at": signed_at,
        "expires_at": expires_at,
        "notified": reason is None,
        "recipient": client.contract.business_owner.email
        if client.contract.business_owner is not None
        else None,
        "target": mail.masked if mail is not None else None,
    }
    if reason is not None:
        payload["reason"] = mask.mask_text(reason)
    (entry,) = ledger_recorder(settings)([NewEntry(REPORT_PUBLISHED, client.name, payload)])
    return {
        **payload,
        "objects": {name: {**details, "link": links[name]} for name, details in objects.items()},
        "seq": entry.seq,
    }
