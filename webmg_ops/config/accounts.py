"""Account names that a contract may give: patterns and the names it may never give.

A contract names accounts that the tool creates or runs commands as on
hosts (the restic account on the backup target, the account a restore
check runs as). A name is a POSIX account name, so it can never read as a
command-line option, and never an account with root's rights; the backup
target's account is also never one of the accounts a Debian server already
has, because the target play would rewrite that account's home, shell and
keys.
"""

from __future__ import annotations

import re

#: A POSIX account name as Debian's adduser accepts it; never an option.
ACCOUNT_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"
_ACCOUNT = re.compile(ACCOUNT_PATTERN)

#: Accounts whose rights are root's.
ROOT_ACCOUNTS = frozenset({"root", "toor"})

#: Accounts a Debian server already has (base-passwd's static accounts, the
#: services of a minimal server, PostgreSQL) and the agency's maintenance
#: account, which has sudo: the backup target's account is never one of them.
SYSTEM_ACCOUNTS = ROOT_ACCOUNTS | frozenset(
    {
        "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
        "proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "_apt", "sshd",
        "messagebus", "systemd-network", "systemd-resolve", "systemd-timesync",
        "systemd-coredump", "postgres", "webmg",
    }
)  # fmt: skip


def account_problem(name: str, reserved: frozenset[str] = ROOT_ACCOUNTS) -> str | None:
    """Given an account name and the names refused for this use, return what is wrong
    with it, or None if it is a plain POSIX name outside ``reserved``.
    """
    if not _ACCOUNT.match(name):
        return (
            f"account {name!r} is not a POSIX account name (lowercase letter or '_', then "
            "lowercase letters, digits, '_' or '-', 32 at most)"
        )
    if name in ROOT_ACCOUNTS:
        return f"account {name!r} has root's rights"
    if name in reserved:
        return f"account {name!r} already exists on a Debian server or is the maintenance account"
    return None
