"""The queue's Procrastinate application: where it lives, its schema, its tasks' names."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
from procrastinate import App, PsycopgConnector, exceptions

from webmg_ops.errors import BadInput, EnvironmentProblem
from webmg_ops.settings import Settings

#: Names the queue's PostgreSQL database when it is not the ledger's.
QUEUE_URL_VARIABLE = "WEBMG_QUEUE_URL"
#: The queue runs wait in; a worker takes every queue unless told otherwise.
RUN_QUEUE = "runs"
#: The task that carries out one run request.
RUN_TASK = "run"
#: The queue of the periodic tasks: the schedule (due runs queued) and the SLA tick.
PERIODIC_QUEUE = "periodic"
SCHEDULE_TASK = "schedule"
TICK_TASK = "tick"
MONITOR_TASK = "monitor"

#: How long a command waits for a connection to the queue's database before it fails.
CONNECT_TIMEOUT_S = 10.0

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")

#: Registers the application's tasks: (app, settings) -> None.
TaskRegistration = Callable[[App, Settings], None]


def queue_conninfo(settings: Settings, environ: dict[str, str] | None = None) -> str:
    """Given the settings (and the environment, default ``os.environ``), return the
    libpq URL of the queue's database: ``WEBMG_QUEUE_URL``, else the ledger's.

    Raise BadInput if it is not a PostgreSQL URL: the queue needs PostgreSQL (a SQLite
    ledger serves one controller, and has no queue).
    """
    env = os.environ if environ is None else environ
    url = env.get(QUEUE_URL_VARIABLE) or settings.ledger_url
    scheme, _, rest = url.partition("://")
    if scheme not in _POSTGRES_SCHEMES or not rest:
        where = QUEUE_URL_VARIABLE if env.get(QUEUE_URL_VARIABLE) else "the ledger"
        raise BadInput(
            f"the job queue needs PostgreSQL, and {where} is {_shown(url)}: set "
            f"{QUEUE_URL_VARIABLE} (or WEBMG_LEDGER_URL) to a postgresql:// URL"
        )
    # libpq reads postgresql://; SQLAlchemy's driver suffix is the ledger's business.
    return f"postgresql://{rest}"


def _shown(url: str) -> str:
    """Given a database URL, return it for a message, its password masked."""
    password = urlsplit(url).password if "://" in url else None
    return repr(url.replace(f":{password}@", ":***@", 1) if password else url)


@contextmanager
def open_queue(settings: Settings, register: TaskRegistration) -> Iterator[App]:
    """Given the settings and the function that registers the tasks, yield the queue's
    application, open, its schema in place (created on first use); closed afterwards.

    Raise BadInput if the queue's URL is not PostgreSQL, EnvironmentProblem if its
    database cannot be reached.
    """
    app = queue_app(settings, register)
    try:
        with app.open():
            ensure_schema(app)
            yield app
    except (psycopg.OperationalError, exceptions.ConnectorException) as error:
        cause = error.__cause__ or error
        raise EnvironmentProblem(f"the job queue's PostgreSQL cannot be reached: {cause}") from None


def queue_app(settings: Settings, register: TaskRegistration) -> App:
    """Given the settings and the function that registers the tasks, return the queue's
    application, not yet open.

    Raise BadInput if the queue's URL is not PostgreSQL.
    """
    connector = PsycopgConnector(conninfo=queue_conninfo(settings), timeout=CONNECT_TIMEOUT_S)
    app = App(connector=connector)
    register(app, settings)
    return app


def ensure_schema(app: App) -> None:
    """Given an open application, create the queue's tables unless they exist.

    Two workers starting at once may both find them missing; the one that loses the
    race finds them created and goes on.
    """
    if _schema_present(app):
        return
    try:
        app.schema_manager.apply_schema()
    except psycopg.errors.DuplicateObject:
        if not _schema_present(app):
            raise


def _schema_present(app: App) -> bool:
    row: dict[str, Any] = app.connector.get_sync_connector().execute_query_one(
        "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present"
    )
    return bool(row["present"])
