"""The ledger store: open a ledger, append entries to the hash chain, read them back.

Appends hold the database's write lock from reading the head to inserting,
so concurrent writers queue instead of forking the chain; the primary key on
``seq`` refuses a fork even if a writer ignored the lock.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, TypeAlias, cast

from sqlalchemy import Connection, Engine, Select, inspect, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from webmg_ops.errors import BadInput, EnvironmentProblem, Failed
from webmg_ops.ledger.actor import resolve_actor
from webmg_ops.ledger.canonical import (
    CURRENT_FORMAT,
    GENESIS_HASH,
    canonical_entry,
    chain_hash,
    format_utc,
    jcs_json,
)
from webmg_ops.ledger.database import (
    begin_write,
    describe_error,
    find_sqlite_file,
    insert_rows,
    make_engine,
    mask_url,
    parse_database_url,
)
from webmg_ops.ledger.migrate import (
    find_current_revision,
    find_head_revision,
    is_at_head,
    upgrade_to_head,
)
from webmg_ops.ledger.records import (
    CORRECTS_KEY,
    Checkpoint,
    Entry,
    NewEntry,
    make_correction,
    validate_actor,
    validate_client,
    validate_kind,
)
from webmg_ops.ledger.schema import ENTRIES_TABLE, ledger_entries

# PostgreSQL's SQLSTATE for "permission denied": a writer role meeting a migration.
_INSUFFICIENT_PRIVILEGE = "42501"

STREAM_CHUNK = 2000
"""Rows fetched at a time when streaming entries."""

StoredRow: TypeAlias = tuple[int, str, str | None, str, str, str, str, str, int]
"""Stored columns in order: seq, kind, client, at, actor, payload, prev_hash, hash, format."""

_COLUMNS = ledger_entries.c
_ROW_COLUMNS = (
    _COLUMNS.seq,
    _COLUMNS.kind,
    _COLUMNS.client,
    _COLUMNS.at,
    _COLUMNS.actor,
    _COLUMNS.payload,
    _COLUMNS.prev_hash,
    _COLUMNS.hash,
    _COLUMNS.format,
)


# Kinds, clients and actors repeat: validating each distinct value once keeps
# batched appends fast.
_check_kind = lru_cache(maxsize=1024)(validate_kind)
_check_client = lru_cache(maxsize=4096)(validate_client)
_check_actor = lru_cache(maxsize=1024)(validate_actor)

# kind, client, at (UTC text), actor, payload (canonical JSON), corrects
_Prepared: TypeAlias = tuple[str, str | None, str, str, str, object]


def _prepare(draft: NewEntry, default_actor: Callable[[], str]) -> _Prepared:
    payload = draft.payload
    if not isinstance(payload, Mapping):
        raise BadInput(f"an entry's payload must be a JSON object, not {type(payload).__name__}")
    return (
        _check_kind(draft.kind),
        _check_client(draft.client),
        format_utc(draft.at if draft.at is not None else datetime.now(UTC)),
        _check_actor(draft.actor if draft.actor is not None else default_actor()),
        jcs_json(payload if isinstance(payload, dict) else dict(payload)),
        payload.get(CORRECTS_KEY),
    )


def _check_corrects(corrects: object, seq: int) -> None:
    if corrects is None:
        return
    if isinstance(corrects, bool) or not isinstance(corrects, int) or not 1 <= corrects < seq:
        raise BadInput(
            f"'{CORRECTS_KEY}' must name an earlier entry's seq (1 to {seq - 1}), not {corrects!r}"
        )


def _row_to_entry(row: StoredRow) -> Entry:
    seq, kind, client, at, actor, payload_json, prev_hash, hash_, entry_format = row
    try:
        moment = datetime.fromisoformat(at)
    except (TypeError, ValueError):
        raise Failed(
            f"ledger entry {seq} has an unreadable time {at!r}: run 'webmg-ops ledger verify'"
        ) from None
    return Entry(
        seq=seq,
        kind=kind,
        client=client,
        at=moment,
        actor=actor,
        payload_json=payload_json,
        prev_hash=prev_hash,
        hash=hash_,
        format=entry_format,
    )


class LedgerReader(Protocol):
    """What reading code is handed of an open ledger: its entries and its head, no append."""

    def entries(
        self,
        *,
        client: str | None = None,
        kinds: Sequence[str] | None = None,
        since: datetime | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
        clients: Sequence[str] | None = None,
    ) -> Iterator[Entry]:
        """Yield the entries in seq order, as :meth:`Ledger.entries`."""
        ...

    def head(self) -> Checkpoint | None:
        """Return the checkpoint of the newest entry, as :meth:`Ledger.head`."""
        ...


class Ledger:
    """An open ledger: append entries, read them, find the head.

    Use :func:`open_ledger` to make one; close it (or use it as a context
    manager) to release its connections. A ledger opened read-only on a
    SQLite file that does not exist behaves as an empty ledger.
    """

    def __init__(self, url: URL, engine: Engine | None, *, writable: bool) -> None:
        self.url = url
        self._engine = engine
        self._writable = writable
        self._schema_ready = False
        self._actor: str | None = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({mask_url(self.url)!r})"

    def close(self) -> None:
        """Release the ledger's database connections."""
        if self._engine is not None:
            self._engine.dispose()

    @property
    def readable_by_other_processes(self) -> bool:
        """Whether another process can open the same ledger: a file or a server, not memory."""
        if self._engine is None:
            return False
        return self.url.get_backend_name() != "sqlite" or find_sqlite_file(self.url) is not None

    def reopened(self) -> Ledger:
        """Return the same ledger, read-only, on connections of its own: for a forked child.

        The child must leave the connections it inherited alone, unused and
        referenced: closing them, even by dropping them, could end them for
        the parent too, as they share its sockets. Raise EnvironmentProblem
        if no driver loads.
        """
        return Ledger(self.url, make_engine(self.url, writable=False), writable=False)

    @property
    def description(self) -> str:
        """The ledger's URL with any password masked, for messages."""
        return mask_url(self.url)

    def _default_actor(self) -> str:
        if self._actor is None:
            self._actor = resolve_actor()
        return self._actor

    def _has_schema(self, connection: Connection) -> bool:
        if not self._schema_ready:
            self._schema_ready = inspect(connection).has_table(ENTRIES_TABLE)
        return self._schema_ready

    def ensure_schema(self) -> None:
        """Create or upgrade the schema to the newest revision if needed.

        Raise EnvironmentProblem if the ledger was opened read-only or the
        database refuses (naming ``ledger setup-roles`` when the role may not
        migrate).
        """
        engine = self._require_writable()
        current: str | None = None
        try:
            with engine.connect() as connection:
                at_head = is_at_head(connection)
                connection.rollback()
            if at_head:
                self._schema_ready = True
                return
            with engine.connect() as connection:
                current = find_current_revision(connection)
                connection.rollback()
            if current != find_head_revision():
                with begin_write(engine) as connection:
                    # Checked again under the lock: another process may have just migrated.
                    if find_current_revision(connection) != find_head_revision():
                        upgrade_to_head(connection)
        except SQLAlchemyError as error:
            if getattr(getattr(error, "orig", None), "sqlstate", None) == _INSUFFICIENT_PRIVILEGE:
                raise EnvironmentProblem(
                    f"ledger {self.description} is at schema revision {current or 'none'} and "
                    f"this webmg-ops needs {find_head_revision()}, which its append-only role "
                    "may not migrate to: the database's administrator runs "
                    "'webmg-ops ledger setup-roles'"
                ) from None
            raise describe_error(self.url, error) from None
        self._schema_ready = True

    def database(self) -> Engine:
        """Return the engine of a writable ledger, for the tables beside the chain (the
        monitor's samples). Raise EnvironmentProblem if it was opened read-only."""
        return self._require_writable()

    def _require_writable(self) -> Engine:
        if self._engine is None or not self._writable:
            raise EnvironmentProblem(f"ledger {self.description} was opened read-only")
        return self._engine

    def append(
        self,
        kind: str,
        client: str | None,
        payload: Mapping[str, Any],
        *,
        actor: str | None = None,
        at: datetime | None = None,
    ) -> Entry:
        """Given what happened, for which client (None: global), return the appended entry.

        ``actor`` defaults to the operator (:func:`resolve_actor`), ``at`` to now.
        Raise BadInput if the kind, client, actor, time or payload is invalid
        (nothing is written), EnvironmentProblem if the database fails.
        """
        return self.append_many([NewEntry(kind, client, payload, actor=actor, at=at)])[0]

    def append_many(self, items: Iterable[NewEntry]) -> list[Entry]:
        """Given entries to append, return them as stored, appended in one transaction.

        Either all are appended or none. Raise BadInput if any entry is
        invalid, EnvironmentProblem if the database fails.
        """
        prepared = [_prepare(draft, self._default_actor) for draft in items]
        if not prepared:
            return []
        engine = self._require_writable()
        if not self._schema_ready:
            self.ensure_schema()
        try:
            with begin_write(engine) as connection:
                return self._insert(connection, prepared)
        except SQLAlchemyError as error:
            raise describe_error(self.url, error) from None

    def append_derived(
        self,
        client: str,
        kinds: Sequence[str],
        derive: Callable[[Sequence[Entry]], Sequence[NewEntry]],
    ) -> list[Entry]:
        """Given a client, entry kinds and a decision, append what the decision derives from
        the client's entries of those kinds (oldest first); return the appended entries.

        The entries are read under the ledger's write lock and what is derived is
        appended in the same transaction, so that two decisions on the same history
        never both pass (each sees the other's entries). Raise what ``derive`` raises
        (nothing written), BadInput for an invalid entry, EnvironmentProblem if the
        database fails.
        """
        engine = self._require_writable()
        if not self._schema_ready:
            self.ensure_schema()
        query = (
            select(*_ROW_COLUMNS)
            .where(_COLUMNS.client == client)
            .where(_COLUMNS.kind.in_(list(kinds)))
            .order_by(_COLUMNS.seq)
        )
        try:
            with begin_write(engine) as connection:
                history = [_row_to_entry(row) for row in connection.execute(query)]
                prepared = [_prepare(draft, self._default_actor) for draft in derive(history)]
                return self._insert(connection, prepared) if prepared else []
        except SQLAlchemyError as error:
            raise describe_error(self.url, error) from None

    def _insert(self, connection: Connection, prepared: Sequence[_Prepared]) -> list[Entry]:
        """Given a connection holding the write lock and prepared entries, chain them on
        the head, insert them and return them as stored."""
        head = self._read_head(connection)
        seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
        rows: list[tuple[Any, ...]] = []
        entries: list[Entry] = []
        for kind, client, at, actor, payload_json, corrects in prepared:
            seq += 1
            _check_corrects(corrects, seq)
            hash_ = chain_hash(
                prev_hash,
                canonical_entry(seq, kind, client, at, actor, payload_json, CURRENT_FORMAT),
            )
            rows.append(
                (seq, kind, client, at, actor, payload_json, prev_hash, hash_, CURRENT_FORMAT)
            )
            entries.append(
                Entry(
                    seq=seq,
                    kind=kind,
                    client=client,
                    at=datetime.fromisoformat(at),
                    actor=actor,
                    payload_json=payload_json,
                    prev_hash=prev_hash,
                    hash=hash_,
                    format=CURRENT_FORMAT,
                )
            )
            prev_hash = hash_
        insert_rows(connection, ledger_entries, rows)
        return entries

    def correct(
        self,
        seq: int,
        payload: Mapping[str, Any],
        *,
        reason: str,
        actor: str | None = None,
    ) -> Entry:
        """Given the seq of an entry, its corrected payload and why, return the correction.

        See :func:`make_correction`. Raise BadInput if no entry has that seq
        or the reason is blank.
        """
        original = self.get(seq)
        if original is None:
            raise BadInput(f"no ledger entry has seq {seq}: nothing to correct")
        return self.append_many([make_correction(original, payload, reason=reason, actor=actor)])[0]

    def _read_head(self, connection: Connection) -> Checkpoint | None:
        if not self._has_schema(connection):
            return None
        row = connection.execute(
            select(_COLUMNS.seq, _COLUMNS.hash).order_by(_COLUMNS.seq.desc()).limit(1)
        ).first()
        return None if row is None else Checkpoint(seq=row[0], hash=row[1])

    def head(self) -> Checkpoint | None:
        """Return the checkpoint of the newest entry, None if the ledger is empty.

        Raise EnvironmentProblem if the database fails.
        """
        if self._engine is None:
            return None
        try:
            with self._engine.connect() as connection:
                return self._read_head(connection)
        except SQLAlchemyError as error:
            raise describe_error(self.url, error) from None

    def get(self, seq: int) -> Entry | None:
        """Given a seq, return that entry, None if there is none."""
        found = next(self.entries(after_seq=seq - 1, limit=1), None)
        return found if found is not None and found.seq == seq else None

    def _stream(self, query: Select[Any]) -> Iterator[StoredRow]:
        if self._engine is None:
            return
        try:
            with self._engine.connect() as connection:
                if not self._has_schema(connection):
                    return
                result = connection.execution_options(yield_per=STREAM_CHUNK).execute(query)
                # Rows behave as tuples; yielding them as they are keeps verify fast.
                yield from cast(Iterator[StoredRow], result)
        except SQLAlchemyError as error:
            raise describe_error(self.url, error) from None

    def stored_rows(
        self,
        *,
        client: str | None = None,
        kinds: Sequence[str] | None = None,
        since: datetime | None = None,
        after_seq: int | None = None,
        through_seq: int | None = None,
        limit: int | None = None,
        clients: Sequence[str] | None = None,
    ) -> Iterator[StoredRow]:
        """Given optional filters, yield the matching rows' stored columns in seq order.

        Rows are streamed as :data:`StoredRow` tuples, exactly as stored: this
        is what verification hashes. Filters combine: entries of ``client``,
        of one of ``kinds``, at or after ``since``, after seq ``after_seq``,
        up to seq ``through_seq`` included, at most ``limit``, of one of
        ``clients`` (one query for many clients: a query each costs more than
        reading their entries; each name is a bound parameter, so callers pass
        a few hundred at a time). Raise BadInput if ``since`` is naive,
        EnvironmentProblem if the database fails.
        """
        query = select(*_ROW_COLUMNS)
        if client is not None:
            query = query.where(_COLUMNS.client == client)
        if clients is not None:
            query = query.where(_COLUMNS.client.in_(list(clients)))
        if kinds is not None:
            query = query.where(_COLUMNS.kind.in_(list(kinds)))
        if since is not None:
            query = query.where(_COLUMNS.at >= format_utc(since))
        if after_seq is not None:
            query = query.where(_COLUMNS.seq > after_seq)
        if through_seq is not None:
            query = query.where(_COLUMNS.seq <= through_seq)
        query = query.order_by(_COLUMNS.seq)
        if limit is not None:
            query = query.limit(limit)
        return self._stream(query)

    def entries(
        self,
        *,
        client: str | None = None,
        kinds: Sequence[str] | None = None,
        since: datetime | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
        clients: Sequence[str] | None = None,
    ) -> Iterator[Entry]:
        """Given optional filters (as :meth:`stored_rows`), yield the entries in seq order.

        Raise BadInput if ``since`` is naive, EnvironmentProblem if the
        database fails, Failed if a stored entry is unreadable.
        """
        for row in self.stored_rows(
            client=client,
            kinds=kinds,
            since=since,
            after_seq=after_seq,
            limit=limit,
            clients=clients,
        ):
            yield _row_to_entry(row)

    def latest(
        self,
        kind: str,
        client: str | None,
        where: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> Entry | None:
        """Given a kind, a client (None: global) and a test on payloads, return the newest match.

        Entries that a later entry corrects are skipped, so the answer is the
        record as corrected; e.g. the last successful backup of a client is
        ``latest("run-finished", "acme", lambda p: p.get("action") == "backup"
        and p.get("outcome") == "succeeded")``. Return None if nothing
        matches. Raise BadInput if the kind is invalid.
        """
        query = (
            select(*_ROW_COLUMNS)
            .where(_COLUMNS.kind == validate_kind(kind))
            .where(_COLUMNS.client == client if client is not None else _COLUMNS.client.is_(None))
            .order_by(_COLUMNS.seq.desc())
        )
        corrected: set[int] = set()
        for row in self._stream(query):
            entry = _row_to_entry(row)
            # A correction always follows what it corrects, so newest-first
            # sees the correction before the entry it replaces.
            if entry.corrects is not None:
                corrected.add(entry.corrects)
            if entry.seq in corrected:
                continue
            if where is None or where(entry.payload):
                return entry
        return None


def open_ledger(url: str, *, create: bool = True, missing_ok: bool = False) -> Ledger:
    """Given a SQLAlchemy URL, return the open ledger.

    With ``create`` (commands that write), the SQLite file's folder is made
    if needed and the schema is created or upgraded. Without it nothing is
    ever created, and a SQLite file that does not exist is refused (a
    mistyped path must not answer "intact, empty"), unless ``missing_ok``
    (commands that plan from history, for which a fresh checkout's missing
    ledger is an empty history): then it is an empty ledger. Raise BadInput
    if the URL is invalid or unsupported, or the ledger is missing and not
    ``missing_ok``; EnvironmentProblem if the driver is missing, the path is
    not writable or the database cannot be reached.
    """
    parsed = parse_database_url(url)
    sqlite_file = find_sqlite_file(parsed)
    if sqlite_file is not None:
        if not create and not sqlite_file.exists():
            if missing_ok:
                return Ledger(parsed, None, writable=False)
            raise BadInput(
                f"no ledger yet at {sqlite_file}: nothing has been recorded there "
                "(check --ledger or WEBMG_LEDGER_URL)"
            )
        if create:
            _make_parent(sqlite_file, parsed)
            _make_private(sqlite_file, parsed)
    engine = make_engine(parsed, writable=create)
    ledger = Ledger(parsed, engine, writable=create)
    try:
        with engine.connect() as connection:
            ledger._has_schema(connection)
    except SQLAlchemyError as error:
        engine.dispose()
        raise describe_error(parsed, error) from None
    if create:
        try:
            ledger.ensure_schema()
        except EnvironmentProblem:
            engine.dispose()
            raise
    return ledger


def _make_private(path: Path, url: URL) -> None:
    """Given the SQLite file, create it or make it readable by its owner only.

    SQLite gives its journal and WAL files the database file's mode, so the
    whole ledger stays private, whatever the umask of the command that made it.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077 and path.stat().st_uid == os.geteuid():
            path.chmod(mode & 0o700)
    except OSError as error:
        raise EnvironmentProblem(
            f"cannot create ledger {mask_url(url)}: {error.strerror or error}"
        ) from None


def _make_parent(path: Path, url: URL) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise EnvironmentProblem(
            f"cannot create the folder of ledger {mask_url(url)}: {error.strerror or error}"
        ) from None
