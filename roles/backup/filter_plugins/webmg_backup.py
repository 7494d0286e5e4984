"""Filters of the backup role.

``webmg_host_restic_password`` gives each host the password of its own
repository: hex HMAC-SHA256 of the host's name keyed with the client's
vault password. A host holds only its own value and cannot derive the
client's password nor another host's from it; the controller derives the
same value (``webmg_ops.backups.repository.host_password``) to open each
host's repository for restore drills.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

#: What a host's name is prefixed with before it is keyed (the controller uses the same words).
HOST_PASSWORD_CONTEXT = b"webmg-ops restic repository of host "


def webmg_host_restic_password(client_password: str, host: str) -> str:
    """Given the client's restic password and a host's name, return the host's own password."""
    return hmac.new(
        str(client_password).encode(), HOST_PASSWORD_CONTEXT + str(host).encode(), hashlib.sha256
    ).hexdigest()


class FilterModule:
    """The backup role's filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Return the filters by name."""
        return {"webmg_host_restic_password": webmg_host_restic_password}
