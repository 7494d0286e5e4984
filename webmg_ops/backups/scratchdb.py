"""A scratch PostgreSQL server on the controller: where drills restore database dumps.

A restore drill never restores into a live database. It starts a private
server (Debian's ``postgresql`` binaries, ``make setup`` installs them) in a
scratch folder, listening only on a Unix socket in that folder, restores the
dump into a fresh database there, counts rows, and removes it all.

A dump comes from a client's host and may be hostile: its functions, index
expressions and views run inside the server during the restore and the row
counts. So the dump is restored, and its rows counted, by ``webmg_restore``,
a role that owns the scratch database and nothing else: not a superuser, not
a member of ``pg_execute_server_program`` (no ``COPY ... TO PROGRAM``) nor
of ``pg_read_server_files``. It logs in as itself, because a ``SET ROLE``
taken by a superuser session is undone by a ``RESET ROLE`` in the dump.

When the controller runs as root, the server and its client programs run as
``webmg-scratch``, a system account of their own (created on first use; no
login shell, no home), with an empty environment, so that nothing the
controller holds (SSH keys, the vault password, ``var/``, all root-only) is
readable from the server even through a flaw in it. Without root, the server
runs as the controller's own account (PostgreSQL needs no other), and it is
the restore role alone that keeps the dump from running programs.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from webmg_ops import process
from webmg_ops.errors import EnvironmentProblem, Failed

#: A plain SQL identifier; anything else is refused before it reaches SQL.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
START_TIMEOUT_S = 60
RESTORE_TIMEOUT_S = 3600

#: The system account the server runs as when the controller is root.
SCRATCH_ACCOUNT = "webmg-scratch"
#: The server's bootstrap superuser: it only creates the restore role and databases.
SUPERUSER = "postgres"
#: The role that restores dumps and counts their rows (see the module's docstring).
RESTORE_ROLE = "webmg_restore"

#: No superuser, no new databases or roles, no replication, row security applies.
_CREATE_RESTORE_ROLE = (
    f"CREATE ROLE {RESTORE_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
    "NOREPLICATION NOBYPASSRLS"
)

#: How the scratch account is made: a system account, its own group, no home, no shell.
_USERADD = (
    "useradd",
    "--system",
    "--user-group",
    "--no-create-home",
    "--home-dir",
    "/nonexistent",
    "--shell",
    "/usr/sbin/nologin",
    "--comment",
    "webmg-ops scratch PostgreSQL for restore drills",
    SCRATCH_ACCOUNT,
)

#: The whole environment of the server and its clients: none of the controller's
#: variables (vault password file, restic password, S3 keys, PG*) reaches them.
_ENVIRONMENT = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}


def find_binary(name: str) -> str:
    """Given a PostgreSQL program name, return its path (newest major version first).

    Raise EnvironmentProblem if it is not installed.
    """
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    if not candidates:
        raise EnvironmentProblem(f"PostgreSQL's {name} is not installed (make setup)")
    return str(candidates[0])


@dataclass(frozen=True)
class Account:
    """The operating-system account the scratch server and its clients run as."""

    name: str
    uid: int
    gid: int

    def identity(self) -> process.RunAs | None:
        """Return how a program is run as this account.

        From root: its uid and gid and no supplementary group (root's groups
        are not handed on). Otherwise None: a process keeps its own account.
        """
        if os.geteuid() != 0:
            return None
        return process.RunAs(self.uid, self.gid)


def scratch_account() -> Account:
    """Return the account the scratch server runs as: ``webmg-scratch`` (created if
    missing) when the controller runs as root, else the controller's own account.

    Raise EnvironmentProblem if the account cannot be created, or has uid or gid 0.
    """
    if os.geteuid() != 0:
        own = pwd.getpwuid(os.geteuid())
        return Account(own.pw_name, own.pw_uid, own.pw_gid)
    try:
        entry = pwd.getpwnam(SCRATCH_ACCOUNT)
    except KeyError:
        # Two drills may create it at once: the loser's "already exists" is fine.
        done = process.run(_USERADD, timeout=None)
        try:
            entry = pwd.getpwnam(SCRATCH_ACCOUNT)
        except KeyError:
            detail = done.masked_stderr.strip() or f"exit status {done.returncode}"
            raise EnvironmentProblem(
                f"the system account {SCRATCH_ACCOUNT} could not be created: {detail}"
            ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise EnvironmentProblem(
            f"the account {SCRATCH_ACCOUNT} has uid or gid 0: the scratch server never runs as root"
        )
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def free_port() -> int:
    """Return a TCP port free on loopback now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_as(
    account: Account, argv: list[str], folder: Path, timeout: float
) -> process.Completed[str]:
    """Given the server's account, a command, the server's folder and a time limit,
    run the command as the account in that folder with the bare environment; return it.

    A command that takes longer is killed and comes back with ``timed_out`` set.
    Raise StartFailed (an EnvironmentProblem) if it cannot be started.
    """
    return process.run(
        argv, timeout=timeout, env=_ENVIRONMENT, cwd=folder, run_as=account.identity()
    )


def _copy_for(account: Account, source: Path, target: Path) -> None:
    """Copy SOURCE (never through a symbolic link) to TARGET, readable by ACCOUNT only."""
    with (
        os.fdopen(os.open(source, os.O_RDONLY | os.O_NOFOLLOW), "rb") as reader,
        os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as writer,
    ):
        shutil.copyfileobj(reader, writer)
    if os.geteuid() == 0:
        os.chown(target, account.uid, account.gid)


def _restore_error(stderr: str) -> str:
    """Given pg_restore's messages, return its cause: the server's error and the command."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    # The server's ERROR line names the cause; the last one names the command it stopped on.
    errors = [line for line in lines if "ERROR:" in line][:1]
    return " ".join(errors + [line for line in lines[-1:] if line not in errors]) or (
        "pg_restore failed"
    )


@dataclass(frozen=True)
class ScratchServer:
    """A running scratch server: where its socket is, on which port, and as whom it runs."""

    folder: Path
    port: int
    listen_tcp: bool
    account: Account

    @property
    def url(self) -> str:
        """Return a SQLAlchemy URL of the server (TCP on loopback when it listens there)."""
        if self.listen_tcp:
            return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        return f"postgresql+psycopg://{SUPERUSER}@/postgres?host={self.folder}&port={self.port}"

    def _connection(self, database: str, role: str) -> list[str]:
        """Return the client arguments that reach DATABASE as ROLE on this server's socket."""
        return ["-h", str(self.folder), "-p", str(self.port), "-U", role, "-d", database]

    def _psql(self, database: str, command: str, *, role: str = SUPERUSER) -> str:
        """Given a database, one SQL command and the role to run it as, return its output.

        Raise Failed with the server's message if it fails.
        """
        argv = [find_binary("psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1"]
        argv += [*self._connection(database, role), "-c", command]
        done = _run_as(self.account, argv, self.folder, RESTORE_TIMEOUT_S)
        if done.timed_out:
            raise Failed(f"scratch database: no answer within {RESTORE_TIMEOUT_S} s")
        if done.returncode != 0:
            raise Failed(f"scratch database: {done.masked_stderr.strip() or 'psql failed'}")
        return done.stdout

    def restore_dump(self, dump: Path, database: str) -> None:
        """Given a custom-format dump and a new database name, restore the dump into it
        as the restore role, which owns the new database and nothing else.

        Raise Failed with pg_restore's message if the dump does not restore
        (a dump that needs a superuser's power does not).
        """
        if not _IDENTIFIER.match(database):
            raise Failed(f"invalid scratch database name {database!r}")
        self._psql("postgres", f'CREATE DATABASE "{database}" OWNER {RESTORE_ROLE}')
        # pg_restore runs as the server's account: give it its own copy of the dump.
        readable = self.folder / f"{database}.dump"
        try:
            _copy_for(self.account, dump, readable)
        except OSError as error:
            readable.unlink(missing_ok=True)
            raise Failed(f"the dump {dump.name} cannot be read: {error.strerror}") from None
        argv = [
            find_binary("pg_restore"),
            "--no-owner",
            "--no-privileges",
            f"--role={RESTORE_ROLE}",
            "--exit-on-error",
            *self._connection(database, RESTORE_ROLE),
            str(readable),
        ]
        try:
            done = _run_as(self.account, argv, self.folder, RESTORE_TIMEOUT_S)
        finally:
            readable.unlink(missing_ok=True)
        if done.timed_out:
            raise Failed(f"the dump {dump.name} did not restore within {RESTORE_TIMEOUT_S} s")
        if done.returncode != 0:
            detail = _restore_error(done.masked_stderr)
            raise Failed(f"the dump {dump.name} does not restore: {detail}")

    def count_rows(self, database: str, schema: str, table: str) -> int:
        """Given a database, a schema and a table, return the table's exact row count,
        counted as the restore role (a view or policy of the dump runs with its rights).

        Raise Failed if a name is not a plain identifier or the query fails.
        """
        for name in (schema, table):
            if not _IDENTIFIER.match(name):
                raise Failed(f"invalid table name {name!r} in the manifest")
        query = f'SELECT count(*) FROM "{schema}"."{table}"'
        return int(self._psql(database, query, role=RESTORE_ROLE).strip())


@contextmanager
def scratch_server(*, listen_tcp: bool = False) -> Iterator[ScratchServer]:
    """Start a private PostgreSQL server in a scratch folder, with its restore role;
    stop and remove it at the end.

    It runs as :func:`scratch_account` and listens on a Unix socket in its
    folder (and on loopback with ``listen_tcp``, for tests). Raise
    EnvironmentProblem if PostgreSQL is not installed or does not start.
    """
    initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
    account = scratch_account()
    # mkdtemp's folder is private (0700); handed to the account, it holds the
    # cluster, the socket and the dump being restored, and nothing else.
    folder = Path(tempfile.mkdtemp(prefix="webmg-scratch-pg-"))
    if os.geteuid() == 0:
        os.chown(folder, account.uid, account.gid)
    port = free_port()
    server = ScratchServer(folder=folder, port=port, listen_tcp=listen_tcp, account=account)
    try:
        _start(server, initdb, pg_ctl)
        try:
            server._psql("postgres", _CREATE_RESTORE_ROLE)
        except Failed as error:
            raise EnvironmentProblem(
                f"the scratch server's restore role: {error.message}"
            ) from None
    except EnvironmentProblem:
        _stop(server, pg_ctl)
        raise
    try:
        yield server
    finally:
        _stop(server, pg_ctl)


def _stop(server: ScratchServer, pg_ctl: str) -> None:
    """Stop SERVER if it runs, and remove its folder."""
    # Should the stop hang (the result then says timed out), removing the folder still
    # ends the server: a postmaster whose lock file is gone shuts itself down within a minute.
    _run_as(
        server.account,
        [pg_ctl, "-D", str(server.folder / "data"), "-m", "fast", "-w", "stop"],
        server.folder,
        START_TIMEOUT_S,
    )
    shutil.rmtree(server.folder, ignore_errors=True)


def _start(server: ScratchServer, initdb: str, pg_ctl: str) -> None:
    """Given a server not yet started and the paths of initdb and pg_ctl, create its
    cluster and start it. Raise EnvironmentProblem with the cause if it does not start.
    """
    data = server.folder / "data"
    listen = "127.0.0.1" if server.listen_tcp else "''"
    options = f"-c listen_addresses={listen} -p {server.port} -k {server.folder} -c fsync=off"
    steps = (
        [initdb, "-D", str(data), "-A", "trust", "-U", SUPERUSER, "--no-sync"],
        [pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(server.folder / "log"), "start"],
    )
    for argv in steps:
        done = _run_as(server.account, argv, server.folder, START_TIMEOUT_S)
        if done.timed_out:
            raise EnvironmentProblem(
                f"the scratch PostgreSQL server did not start within {START_TIMEOUT_S} s"
            )
        if done.returncode != 0:
            lines = done.masked_stderr.strip().splitlines()
            detail = (lines or [f"exit status {done.returncode}"])[-1]
            raise EnvironmentProblem(f"the scratch PostgreSQL server did not start: {detail}")
