"""Offsite copies: restic snapshots copied to an S3 repository, run files uploaded to S3.

After a successful backup a client's policy may require an offsite copy:
``restic copy`` of the snapshots into an S3 repository, or an upload of the
drill and run reports. The flow is one way:

1. :class:`OffsiteTarget` validates the settings once, at the edge
   (:mod:`~webmg_ops.config.offsite_target`);
2. :func:`resolve_credentials` reads the key pair from the environment, an
   AWS shared-credentials file or the decrypted vault
   (:mod:`~webmg_ops.config.s3_credentials`);
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
"""

from __future__ import annotations

from webmg_ops.config.s3_credentials import (
    ENVIRONMENT_ACCESS_KEY_ID,
    ENVIRONMENT_SECRET_ACCESS_KEY,
    ENVIRONMENT_SESSION_TOKEN,
    VAULT_ACCESS_KEY_ID,
    VAULT_SECRET_ACCESS_KEY,
    VAULT_SESSION_TOKEN,
    OffsiteCredentials,
    resolve_credentials,
)
from webmg_ops.offsite.copy import CopyResult, copy_snapshots, mask_location
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
    "PendingItem",
    "PublishResult",
    "RetryOutcome",
    "RetryPolicy",
    "RetryReport",
    "SourceFor",
    "copy_snapshots",
    "default_credentials",
    "default_source",
    "make_s3_client",
    "mask_location",
    "object_key",
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
