"""Backups as the controller sees them: restic, each host's repository, manifests, restores.

``restic`` runs the restic binary; ``repository`` opens a client's per-host
repositories; ``maintenance`` applies retention and checks from the
controller; ``s3_policy`` is what a host's own S3 key may do; ``manifest``,
``restore``, ``restore_check`` and ``scratchdb`` prove a snapshot by
restoring it. These modules return results; they never record.
"""
