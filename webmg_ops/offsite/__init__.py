"""Offsite copies: restic snapshots copied to an S3 repository, run files uploaded to S3.

After a successful backup a client's policy may require an offsite copy:
``restic copy`` of the snapshots into an S3 repository, or an upload of the
drill and run reports. The flow is one way:

1. :class:`OffsiteTarget` validates the settings once, at the edge
   (:mod:`~webmg_ops.offsite.target`);
2. :func:`resolve_credentials` reads the key pair from the environment, an
   AWS shared-credentials file or the decrypted vault
   (:mod:`~webmg_ops.offsite.credentials`);
3. :func:`publish_files` and :func:`copy_snapshots` do the work and return
   results; a network or storage failure is a result (unpublished, with a
   reason), never an exception (:mod:`~webmg_ops.offsite.upload`,
   :mod:`~webmg_ops.offsite.copy`);
4. :func:`record_publication` and :func:`record_copy` write the outcome to the
   ledger (``offsite-published`` / ``offsite-unpublished``) and keep every
   failed item in ``var/offsite/pending.jsonl``, from which
   :func:`retry_pending` publishes it later. Nothing is lost: an item leaves
   the pending file only after its publication is in the ledger
   (:mod:`~webmg_ops.offsite.record`, :mod:`~webmg_ops.offsite.pending`,
   :mod:`~webmg_ops.offsite.republish`).

Secrets (S3 keys, restic passwords) travel in memory and in child processes'
environments only: never in argv, the ledger, the pending file, log lines or
exception messages, where every reason is masked with the secrets in play.

The names below are imported from their modules when first used, so that
importing one module (such as :mod:`~webmg_ops.offsite.target`) does not
import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webmg_ops.offsite.copy import CopyResult, copy_snapshots, mask_location
    from webmg_ops.offsite.credentials import (
        ENVIRONMENT_ACCESS_KEY_ID,
        ENVIRONMENT_SECRET_ACCESS_KEY,
        ENVIRONMENT_SESSION_TOKEN,
        VAULT_ACCESS_KEY_ID,
        VAULT_SECRET_ACCESS_KEY,
        VAULT_SESSION_TOKEN,
        OffsiteCredentials,
        resolve_credentials,
    )
    from webmg_ops.offsite.pending import PENDING_FILE, PendingItem, pending_path, read_pending
    from webmg_ops.offsite.record import (
        PUBLISHED,
        UNPUBLISHED,
        record_copy,
        record_publication,
    )
    from webmg_ops.offsite.republish import (
        CredentialsFor,
        RetryOutcome,
        RetryReport,
        SourceFor,
        default_credentials,
        default_source,
        publish_pending_command,
        retry_pending,
    )
    from webmg_ops.offsite.retry import DEFAULT_RETRY, RetryPolicy
    from webmg_ops.offsite.s3 import TRANSIENT_CLIENT_ERRORS, make_s3_client
    from webmg_ops.offsite.target import (
        PLAIN_HTTP_NETWORKS,
        OffsiteKind,
        OffsiteTarget,
        bucket_name_problem,
        parse_target,
    )
    from webmg_ops.offsite.upload import (
        MAX_SINGLE_UPLOAD_BYTES,
        FilePublication,
        PublishResult,
        object_key,
        publish_files,
        verification_problem,
    )

__all__ = [
    "DEFAULT_RETRY",
    "ENVIRONMENT_ACCESS_KEY_ID",
    "ENVIRONMENT_SECRET_ACCESS_KEY",
    "ENVIRONMENT_SESSION_TOKEN",
    "MAX_SINGLE_UPLOAD_BYTES",
    "PENDING_FILE",
    "PLAIN_HTTP_NETWORKS",
    "PUBLISHED",
    "TRANSIENT_CLIENT_ERRORS",
    "UNPUBLISHED",
    "VAULT_ACCESS_KEY_ID",
    "VAULT_SECRET_ACCESS_KEY",
    "VAULT_SESSION_TOKEN",
    "CopyResult",
    "CredentialsFor",
    "FilePublication",
    "OffsiteCredentials",
    "OffsiteKind",
    "OffsiteTarget",
    "PendingItem",
    "PublishResult",
    "RetryOutcome",
    "RetryPolicy",
    "RetryReport",
    "SourceFor",
    "bucket_name_problem",
    "copy_snapshots",
    "default_credentials",
    "default_source",
    "make_s3_client",
    "mask_location",
    "object_key",
    "parse_target",
    "pending_path",
    "publish_files",
    "publish_pending_command",
    "read_pending",
    "record_copy",
    "record_publication",
    "resolve_credentials",
    "retry_pending",
    "verification_problem",
]

#: Each public name's module, relative to this package.
_HOMES: dict[str, str] = {
    name: module
    for module, names in (
        ("copy", ("CopyResult", "copy_snapshots", "mask_location")),
        (
            "credentials",
            (
                "ENVIRONMENT_ACCESS_KEY_ID",
                "ENVIRONMENT_SECRET_ACCESS_KEY",
                "ENVIRONMENT_SESSION_TOKEN",
                "VAULT_ACCESS_KEY_ID",
                "VAULT_SECRET_ACCESS_KEY",
                "VAULT_SESSION_TOKEN",
                "OffsiteCredentials",
                "resolve_credentials",
            ),
        ),
        ("pending", ("PENDING_FILE", "PendingItem", "pending_path", "read_pending")),
        ("record", ("PUBLISHED", "UNPUBLISHED", "record_copy", "record_publication")),
        (
            "republish",
            (
                "CredentialsFor",
                "RetryOutcome",
                "RetryReport",
                "SourceFor",
                "default_credentials",
                "default_source",
                "publish_pending_command",
                "retry_pending",
            ),
        ),
        ("retry", ("DEFAULT_RETRY", "RetryPolicy")),
        ("s3", ("TRANSIENT_CLIENT_ERRORS", "make_s3_client")),
        (
            "target",
            (
                "PLAIN_HTTP_NETWORKS",
                "OffsiteKind",
                "OffsiteTarget",
                "bucket_name_problem",
                "parse_target",
            ),
        ),
        (
            "upload",
            (
                "MAX_SINGLE_UPLOAD_BYTES",
                "FilePublication",
                "PublishResult",
                "object_key",
                "publish_files",
                "verification_problem",
            ),
        ),
    )
    for name in names
}


def __getattr__(name: str) -> Any:
    """Given a public name, import it from its module and keep it here; else AttributeError."""
    module = _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Return the module's names, the public ones not imported yet included."""
    return sorted({*globals(), *__all__})
