"""How hard an offsite upload or copy is tried before it is left unpublished."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How hard an upload is tried before it is left unpublished.

    ``attempts`` uploads-and-verifications, ``backoff_s`` before the second
    (doubling, with jitter, capped at ``max_backoff_s``); inside each,
    botocore's own ``botocore_attempts`` for transient HTTP errors.
    """

    attempts: int = 3
    backoff_s: float = 2.0
    max_backoff_s: float = 30.0
    botocore_attempts: int = 3
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0

    def delay(self, attempt: int) -> float:
        """Given the number of attempts made, return the seconds to wait before the next."""
        ceiling = min(self.max_backoff_s, self.backoff_s * 2.0 ** (attempt - 1))
        # Jitter keeps several controllers from retrying in lockstep.
        return ceiling * random.uniform(0.5, 1.0)


DEFAULT_RETRY = RetryPolicy()
