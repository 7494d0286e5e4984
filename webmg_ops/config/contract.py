"""The client contract: the model of ``inventories/<client>/client.yml``.

The contract says who the client is, which service level it bought, when
changes may run (windows, freezes), what is in scope, how its services are
checked, and where it tightens its level's defaults. It is validated once,
here, against a schema in which every field has a description and an
example (``webmg-ops schema``).
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from enum import StrEnum
from string import Formatter
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from webmg_ops.config.accounts import ACCOUNT_PATTERN, account_problem
from webmg_ops.config.durations import Duration
from webmg_ops.config.notify_targets import check_notify_url
from webmg_ops.config.offsite_target import OffsiteTarget
from webmg_ops.config.public_holidays import check_country_and_region
from webmg_ops.config.repository_location import parse_repository_location
from webmg_ops.config.zones import time_zone

#: A client name is also a folder name and appears in file paths and
#: commands, so it is kept to a safe slug.
CLIENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_CLIENT_NAME = re.compile(CLIENT_NAME_PATTERN)

#: A database name is written into a file path on the client host and handed
#: to pg_dump: a plain identifier (the one the drill's scratch server accepts),
#: so it can be neither a path nor a conninfo string.
DATABASE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"

#: An Ansible inventory group name.
GROUP_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

#: A Debian package name (Debian policy 5.6.1): never an apt option.
PACKAGE_PATTERN = r"^[a-z0-9][a-z0-9+.-]+$"

#: An absolute path on a host: segments of plain characters (no space, quote,
#: shell or URI character); ``.`` and ``..`` segments are refused apart.
ABSOLUTE_PATH_PATTERN = r"^/$|^(/[A-Za-z0-9_@+=:,~.-]+)+/?$"

#: A file inside the client's folder: relative segments that never start with
#: a dot, so neither ``..`` nor hidden files; symlinks are checked on use.
CLIENT_FILE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$"


class Sector(StrEnum):
    """The client's sector; each adds its preset to the policy."""

    HOTEL = "hotel"
    NGO = "ngo"
    EDUCATION = "education"
    GOVERNMENT = "government"
    SME = "sme"


class Level(StrEnum):
    """The service level bought in the contract."""

    STABILITY_SECURITY = "stability-security"
    CONTINUOUS_EVOLUTION = "continuous-evolution"
    INSTITUTIONAL_SLA = "institutional-sla"


class Language(StrEnum):
    """The language the client's reports are written in."""

    ENGLISH = "en"
    FRENCH = "fr"


class Weekday(StrEnum):
    """A day of the week, as written in windows."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """Return the day's number as :meth:`datetime.date.weekday` counts it."""
        return list(Weekday).index(self)


UpdateMode = Literal["security", "all", "approved"]


def is_client_name(name: str) -> bool:
    """Given a candidate client name, return whether it is a safe slug."""
    return bool(_CLIENT_NAME.match(name))


def _check_time_zone(name: str) -> str:
    try:
        time_zone(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown IANA time zone {name!r}") from error
    return name


TimeZoneName = Annotated[str, AfterValidator(_check_time_zone)]


def _check_not_root(name: str) -> str:
    problem = account_problem(name)
    if problem is not None:
        raise ValueError(f"{problem}: name the application's own account")
    return name


def _check_plain_segments(path: str) -> str:
    if any(segment in (".", "..") for segment in path.split("/")):
        raise ValueError(f"path {path!r} must not hold '.' or '..' segments")
    return path


#: An unprivileged account on a client host.
AccountName = Annotated[str, Field(pattern=ACCOUNT_PATTERN), AfterValidator(_check_not_root)]

#: An absolute path on a host, without ``.`` or ``..`` segments.
AbsolutePath = Annotated[
    str, Field(pattern=ABSOLUTE_PATH_PATTERN), AfterValidator(_check_plain_segments)
]


class StrictModel(BaseModel):
    """Base of every contract section: unknown keys are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(StrictModel):
    """Someone the agency deals with on the client's side."""

    name: str = Field(min_length=1, description="Full name.", examples=["Anna Gruber"])
    email: str | None = Field(
        default=None,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="E-mail address.",
        examples=["anna.gruber@alpenhof.example"],
    )
    phone: str | None = Field(
        default=None,
        pattern=r"^\+?[0-9 ()./-]{6,20}$",
        description="Phone number, international form.",
        examples=["+43 512 555 0100"],
    )


class Contact(Person):
    """A contact person with their role in the relationship."""

    role: str = Field(
        min_length=1,
        description="What this person does for the client.",
        examples=["IT manager"],
    )

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        if not self.email and not self.phone:
            raise ValueError("a contact needs an email or a phone")
        return self


#: An Apprise URL of a supported scheme (e-mail or webhook), secrets as ``{vault:NAME}``.
NotifyUrl = Annotated[str, AfterValidator(check_notify_url)]


class EscalationStep(Contact):
    """One step of the escalation path, taken when the previous one is silent.

    Its `notify` URLs hear of the step when its `after` has run; the first step's
    also hear of each SLA clock's thresholds (`webmg-ops tick` sends them).
    """

    after: Duration = Field(
        description="How long after the incident opens this step is contacted (SLA time).",
        examples=["30m"],
    )
    notify: list[NotifyUrl] = Field(
        default_factory=list,
        description=(
            "Apprise URLs notified: mailto://, mailtos://, json://, jsons://, form://, forms://; "
            "a secret in a URL is written {vault:NAME} and read from the client's vault. "
            "None: the agency's on-call targets (its own contract's first step)."
        ),
        examples=[
            ["mailtos://ops:{vault:webmg_smtp_password}@mail.example?to=anna@alpenhof.example"]
        ],
    )


class Window(StrictModel):
    """A recurring time slot in which changes may run, in the client's time zone."""

    name: str = Field(
        default="maintenance",
        description="Short name shown in plans and run logs.",
        examples=["weekly"],
    )
    weekdays: list[Weekday] = Field(
        default_factory=list,
        description="Days on which the window opens.",
        examples=[["tue", "thu"]],
    )
    start: time | None = Field(
        default=None,
        description="Local opening time, HH:MM.",
        examples=["22:00"],
    )
    duration: Duration | None = Field(
        default=None,
        description="How long the window stays open (elapsed time; may cross midnight).",
        examples=["3h"],
    )
    timezone: TimeZoneName = Field(
        description="IANA time zone in which weekdays and start are read.",
        examples=["Europe/Vienna"],
    )
    always: bool = Field(
        default=False,
        description=(
            "Always open. Allowed only when every host of the client is a rehearsal-lab "
            "host, so demos and rehearsals never need an emergency override."
        ),
        examples=[False],
    )

    @model_validator(mode="after")
    def _complete(self) -> Window:
        if self.always:
            return self
        missing = [
            field
            for field, value in (
                ("weekdays", self.weekdays),
                ("start", self.start),
                ("duration", self.duration),
            )
            if not value
        ]
        if missing:
            raise ValueError(
                f"a window needs {', '.join(missing)} (or always: true on a lab-only client)"
            )
        return self


class Freeze(StrictModel):
    """A period in which no non-emergency change runs; it beats any window."""

    name: str = Field(min_length=1, description="Name of the period.", examples=["summer season"])
    start: date = Field(description="First frozen day (inclusive).", examples=["2026-07-01"])
    end: date = Field(description="Last frozen day (inclusive).", examples=["2026-08-31"])
    yearly: bool = Field(
        default=False,
        description=(
            "Repeat every year on the same days (the year of start and end is then ignored; "
            "a range may cross New Year)."
        ),
        examples=[True],
    )
    reason: str = Field(
        min_length=1,
        description="Why changes stop, shown when a run is refused.",
        examples=["peak season: bookings must not be disturbed"],
    )

    @model_validator(mode="after")
    def _ordered(self) -> Freeze:
        if not self.yearly and self.end < self.start:
            raise ValueError("a freeze must end on or after its start (or be yearly)")
        return self


class Scope(StrictModel):
    """What the agency covers, and what stays on the client's side."""

    included: list[str] = Field(
        default_factory=list,
        description="Systems and services the agency maintains.",
        examples=[["booking site", "database"]],
    )
    excluded: list[str] = Field(
        default_factory=list,
        description="What is explicitly out of scope (unscoped changes, third-party systems).",
        examples=[["channel manager", "e-mail"]],
    )


#: An HTTP status code a check expects.
HttpStatus = Annotated[int, Field(ge=100, le=599)]


class HealthCheck(StrictModel):
    """An HTTP check of one of the client's services."""

    name: str = Field(min_length=1, description="Name of the check.", examples=["booking site"])
    url: str = Field(
        pattern=r"^https?://[^\s/]+",
        description="URL probed with GET.",
        examples=["http://198.18.0.11/health"],
    )
    expect_status: HttpStatus = Field(
        default=200, description="Expected HTTP status.", examples=[200]
    )
    max_latency_ms: int = Field(
        default=2000,
        gt=0,
        description="Slowest acceptable answer, in milliseconds (a slower one is a failure).",
        examples=[800],
    )
    criticality: Literal["critical", "major", "minor"] = Field(
        default="major",
        description=(
            "How badly the service's outage harms the client: the criticality of the "
            "availability incident the monitor opens when the check keeps failing."
        ),
        examples=["critical"],
    )
    page_weight_kb: int | None = Field(
        default=None,
        gt=0,
        description=(
            "Budget of the page and its same-origin images, scripts and stylesheets, in "
            "kilobytes (1,000 bytes), checked by each probe where the sector's preset has the "
            "mobile page-weight check (hotels)."
        ),
        examples=[1500],
    )


#: The periods of a retention, shortest first (restic's ``--keep-<period>``).
RETENTION_PERIODS: tuple[str, ...] = ("hourly", "daily", "weekly", "monthly", "yearly")


class Retention(StrictModel):
    """How many backup snapshots to keep, per period: for each of the last N periods
    that hold a snapshot, the newest one."""

    hourly: int = Field(
        default=0,
        ge=0,
        description="Hourly snapshots kept (with 6-hourly backups, 8 keeps two days of them).",
        examples=[8],
    )
    daily: int = Field(default=0, ge=0, description="Daily snapshots kept.", examples=[14])
    weekly: int = Field(default=0, ge=0, description="Weekly snapshots kept.", examples=[8])
    monthly: int = Field(default=0, ge=0, description="Monthly snapshots kept.", examples=[6])
    yearly: int = Field(default=0, ge=0, description="Yearly snapshots kept.", examples=[0])


class RestoreCheck(StrictModel):
    """How a restore drill proves the application starts on the restored copy.

    On each host of ``host_group``, the drill copies the restored ``data``
    folder into a scratch folder, runs ``command`` on it as ``user`` (with
    ``{data}`` and ``{port}`` filled in), and expects ``GET
    http://127.0.0.1:{port}{path}`` to answer ``expect_status`` within
    ``wait``; then it stops the command and removes the copy.
    """

    host_group: str = Field(
        default="web",
        pattern=GROUP_PATTERN,
        description="Inventory group whose hosts serve the copy.",
        examples=["web"],
    )
    data: AbsolutePath = Field(
        description=(
            "Backed-up folder the application is started on (absolute; no '.' or '..' "
            "segment, no space or shell character)."
        ),
        examples=["/var/lib/webmg-demo"],
    )
    user: AccountName = Field(
        description=(
            "Account the command runs as (the application's own): a POSIX account name, never root."
        ),
        examples=["webmg-demo"],
    )
    command: str = Field(
        min_length=1,
        description="Command serving the copy; {data} is its folder, {port} its port.",
        examples=[
            "/usr/bin/python3 /usr/lib/webmg-demo-app/app.py --data-dir {data} --port {port}"
        ],
    )
    port: int = Field(
        default=18080, ge=1024, le=65535, description="Loopback port of the copy.", examples=[18080]
    )
    path: str = Field(
        default="/health",
        pattern=r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$",
        description="Path probed with GET (URL characters only).",
        examples=["/health"],
    )
    expect_status: HttpStatus = Field(
        default=200, description="Expected HTTP status.", examples=[200]
    )
    wait: Duration = Field(
        default=timedelta(seconds=30),
        description="Longest wait for the answer.",
        examples=["30s"],
        # The schema shows the default as written in a contract, not as ISO 8601.
        json_schema_extra={"default": "30s"},
    )

    @field_validator("command")
    @classmethod
    def _placeholders(cls, command: str) -> str:
        try:
            fields = {
                name for _text, name, _spec, _conv in Formatter().parse(command) if name is not None
            }
        except ValueError as error:
            raise ValueError(f"command: {error}") from None
        if fields != {"data", "port"}:
            raise ValueError("command must use {data} and {port}, and no other {placeholder}")
        return command


class Database(StrictModel):
    """A database dumped just before each backup."""

    name: str = Field(
        pattern=DATABASE_NAME_PATTERN,
        description=(
            "Database name: letters, digits and underscores, not starting with a digit "
            "(also the name of its dump file)."
        ),
        examples=["bookings"],
    )
    engine: Literal["postgresql", "sqlite"] = Field(
        default="postgresql", description="Database engine.", examples=["postgresql"]
    )
    host_group: str = Field(
        default="db",
        pattern=GROUP_PATTERN,
        description="Inventory group whose hosts hold this database.",
        examples=["db"],
    )
    path: AbsolutePath | None = Field(
        default=None,
        description="File of an SQLite database (absolute, no '.' or '..' segment).",
        examples=["/var/lib/webmg-demo/app.db"],
    )


#: The largest export a backup check reads back from a snapshot (a host decides the size).
EXPORT_MAX_BYTES = 64 * 1024 * 1024


class DonorExport(StrictModel):
    """The export file each backup must hold, read back from the snapshot and checked.

    After each backup, the controller finds ``path`` in the snapshot of every
    host of ``host_group`` (every host backed up when absent), reads it back
    from the repository and counts its CSV data rows (the first row is the
    header). The export is verified when it is a regular file of at most
    64 MiB, holds at least ``min_rows`` data rows and, with ``max_age``, was
    written no longer than that before the backup.
    """

    path: AbsolutePath = Field(
        description="The export file on the host (absolute, inside one of backup.paths).",
        examples=["/var/lib/webmg-demo/exports/donors.csv"],
    )
    host_group: str | None = Field(
        default=None,
        pattern=GROUP_PATTERN,
        description="Inventory group whose hosts hold the export (every host backed up if absent).",
        examples=["web"],
    )
    min_rows: int = Field(
        default=1, ge=0, description="Fewest data rows (after the header).", examples=[1]
    )
    max_age: Duration | None = Field(
        default=None,
        description="Oldest the export may be when the backup runs (any age if absent).",
        examples=["2d"],
    )


class BackupOverrides(StrictModel):
    """Where the contract adds to or tightens the level's backup defaults."""

    paths: list[AbsolutePath] = Field(
        default_factory=list,
        description=(
            "Absolute paths backed up on every host (no '.' or '..' segment, no space or "
            "shell character)."
        ),
        examples=[["/etc", "/var/lib/webmg-demo"]],
    )
    databases: list[Database] = Field(
        default_factory=list,
        description="Databases dumped before each backup.",
        examples=[[{"name": "bookings", "engine": "postgresql"}]],
    )
    repository: str | None = Field(
        default=None,
        description=(
            "restic repository: sftp:USER@HOST:/PATH on the backup target (USER a POSIX "
            "account name, never root, a Debian system account or the maintenance account; "
            "PATH without '.' or '..' segments), or s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX] "
            "with the S3 keys in the vault."
        ),
        examples=[
            "sftp:restic-alpenhof@198.18.0.5:/srv/restic/alpenhof",
            "s3:https://s3.eu-central-1.amazonaws.com/webmg-backups/alpenhof",
        ],
    )
    retention: Retention | None = Field(
        default=None,
        description="Snapshots kept; may only keep more than the level.",
        examples=[{"daily": 14, "weekly": 8}],
    )
    timer: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9*][A-Za-z0-9*:,./~ -]*$",
        description=(
            "Backups between runs: a systemd OnCalendar schedule for a timer on each host; "
            "each timer backup is recorded at the next backup run."
        ),
        examples=["*-*-* 02:30:00"],
    )
    restore_check: RestoreCheck | None = Field(
        default=None,
        description="How a restore drill starts the application on the restored copy.",
        examples=[
            {
                "data": "/var/lib/webmg-demo",
                "user": "webmg-demo",
                "command": "/usr/bin/python3 /usr/lib/webmg-demo-app/app.py "
                "--data-dir {data} --port {port}",
            }
        ],
    )
    donor_export: DonorExport | None = Field(
        default=None,
        description=(
            "Export file each backup must hold and that is read back after it "
            "(the NGO level's donor-export check)."
        ),
        examples=[{"path": "/var/lib/webmg-demo/exports/donors.csv", "host_group": "web"}],
    )
    offsite: OffsiteTarget | None = Field(
        default=None,
        description=(
            "Offsite copy on S3 after each successful backup (restic-copy) or of every "
            "run report (reports)."
        ),
        examples=[
            {
                "kind": "restic-copy",
                "endpoint": "https://s3.eu-central-1.amazonaws.com",
                "bucket": "webmg-offsite",
                "credentials": "vault",
            }
        ],
    )

    @field_validator("repository")
    @classmethod
    def _reachable(cls, repository: str | None) -> str | None:
        if repository is not None:
            parse_repository_location(repository)
        return repository

    @model_validator(mode="after")
    def _export_backed_up(self) -> BackupOverrides:
        # An export outside every backed-up path is never in a snapshot: a check that
        # could only ever fail is a contract mistake, said when the contract is read.
        export = self.donor_export
        if export is not None and not any(
            export.path == path or export.path.startswith(path.rstrip("/") + "/")
            for path in self.paths
        ):
            raise ValueError(f"donor_export.path {export.path!r} is not inside any of backup.paths")
        return self


class UpdateOverrides(StrictModel):
    """Where the contract restricts updates."""

    holds: list[Annotated[str, Field(pattern=PACKAGE_PATTERN)]] = Field(
        default_factory=list,
        description="Packages never upgraded by the tool (Debian package names).",
        examples=[["postgresql-15"]],
    )
    approved_versions_file: str | None = Field(
        default=None,
        pattern=CLIENT_FILE_PATTERN,
        description=(
            "File listing approved package versions, relative to the client folder and "
            "inside it (no absolute path, no '..', no hidden file, no symlink out of it)."
        ),
        examples=["approved-versions.yml"],
    )
    mode: UpdateMode | None = Field(
        default=None,
        description=(
            "Update scope; may only be stricter than the level's (all < security < approved)."
        ),
        examples=["security"],
    )
    batch_percent: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description=(
            "Rolling updates: after the canary host, the share of the run's hosts updated per "
            "batch, in percent; may only be smaller than the level's."
        ),
        examples=[25],
    )


class ResponseTimes(StrictModel):
    """Contracted response times by priority; may only be faster than the level's."""

    p1: Duration | None = Field(default=None, description="Priority 1.", examples=["30m"])
    p2: Duration | None = Field(default=None, description="Priority 2.", examples=["4h"])
    p3: Duration | None = Field(default=None, description="Priority 3.", examples=["1d"])


#: What an incident harms, and how badly: the two axes of the severity table.
IMPACTS: tuple[str, ...] = ("availability", "security", "data", "operations")
CRITICALITIES: tuple[str, ...] = ("critical", "major", "minor")
#: Incident priorities, the most urgent first.
PRIORITIES: tuple[str, ...] = ("P1", "P2", "P3")

Priority = Literal["P1", "P2", "P3"]


class SeverityRow(StrictModel):
    """The priority of one impact's incidents by criticality; may only be more urgent."""

    critical: Priority | None = Field(
        default=None, description="Priority of a critical incident.", examples=["P1"]
    )
    major: Priority | None = Field(
        default=None, description="Priority of a major incident.", examples=["P1"]
    )
    minor: Priority | None = Field(
        default=None, description="Priority of a minor incident.", examples=["P2"]
    )


class SeverityOverrides(StrictModel):
    """Where the contract raises the level's severity table (impact x criticality)."""

    availability: SeverityRow = Field(
        default_factory=SeverityRow,
        description="Incidents that make a service unavailable or slow.",
        examples=[{"major": "P1"}],
    )
    security: SeverityRow = Field(
        default_factory=SeverityRow,
        description="Incidents that expose a system or an account.",
        examples=[{"major": "P1"}],
    )
    data: SeverityRow = Field(
        default_factory=SeverityRow,
        description="Incidents that lose, corrupt or leak data.",
        examples=[{"major": "P1"}],
    )
    operations: SeverityRow = Field(
        default_factory=SeverityRow,
        description="Incidents that hinder the client's or the agency's operations.",
        examples=[{"minor": "P2"}],
    )


class ClockTimes(StrictModel):
    """An SLA clock's budget by priority; may only be shorter than the level's."""

    p1: Duration | None = Field(default=None, description="Priority 1.", examples=["4h"])
    p2: Duration | None = Field(default=None, description="Priority 2.", examples=["1d"])
    p3: Duration | None = Field(default=None, description="Priority 3.", examples=["3d"])


class PostmortemRequirements(StrictModel):
    """Which priorities need a post-mortem before an incident closes; may only add some."""

    p1: bool | None = Field(default=None, description="Priority 1 (always).", examples=[True])
    p2: bool | None = Field(default=None, description="Priority 2.", examples=[True])
    p3: bool | None = Field(default=None, description="Priority 3.", examples=[False])


class IncidentOverrides(StrictModel):
    """Where the contract tightens the level's incident handling."""

    severity: SeverityOverrides = Field(
        default_factory=SeverityOverrides,
        description="Severity table overrides: impact -> criticality -> priority.",
        examples=[{"security": {"major": "P1"}}],
    )
    restore_times: ClockTimes = Field(
        default_factory=ClockTimes,
        description="Time to restore the service (mitigation) by priority.",
        examples=[{"p1": "4h"}],
    )
    resolution_times: ClockTimes = Field(
        default_factory=ClockTimes,
        description="Time to resolve the cause (fix) by priority.",
        examples=[{"p1": "2d"}],
    )
    around_the_clock: bool | None = Field(
        default=None,
        description="SLA clocks run 24/7 instead of in business hours.",
        examples=[True],
    )
    postmortem: PostmortemRequirements = Field(
        default_factory=PostmortemRequirements,
        description="Priorities whose incidents need a post-mortem before closing.",
        examples=[{"p2": True}],
    )
    escalation_thresholds: tuple[Annotated[int, Field(ge=1, le=500)], ...] | None = Field(
        default=None,
        min_length=1,
        description=(
            "Shares of an SLA clock's budget, in percent, at which the escalation path is "
            "notified (the level's thresholds and more)."
        ),
        examples=[[25, 50, 100]],
    )


#: Monday to Friday: the business week when a contract names none.
BUSINESS_WEEK = [Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI]


class BusinessHours(StrictModel):
    """When the client's business is open: the hours in which SLA clocks run
    (unless they run 24/7), public holidays and closures excluded."""

    weekdays: list[Weekday] = Field(
        default_factory=lambda: list(BUSINESS_WEEK),
        min_length=1,
        description="Days on which the business is open (default mon to fri).",
        examples=[["mon", "tue", "wed", "thu", "fri"]],
    )
    start: time = Field(
        default=time(9, 0),
        description="Local opening time, HH:MM (default 09:00).",
        examples=["08:00"],
        json_schema_extra={"default": "09:00"},
    )
    end: time = Field(
        default=time(18, 0),
        description="Local closing time, HH:MM, later than start (default 18:00).",
        examples=["17:30"],
        json_schema_extra={"default": "18:00"},
    )
    timezone: TimeZoneName | None = Field(
        default=None,
        description="IANA time zone of the client (default: the first window's, else UTC).",
        examples=["Europe/Vienna"],
    )
    country: str | None = Field(
        default=None,
        description="ISO 3166-1 alpha-2 code of the country whose public holidays close the "
        "business.",
        examples=["AT"],
    )
    region: str | None = Field(
        default=None,
        description="The country's subdivision (state, canton, region) whose holidays apply "
        "as well, as the holidays library names it.",
        examples=["7"],
    )
    closures: list[date] = Field(
        default_factory=list,
        description="Extra days on which the business is closed.",
        examples=[["2026-12-24", "2026-12-31"]],
    )

    @model_validator(mode="after")
    def _consistent(self) -> BusinessHours:
        if self.end <= self.start:
            raise ValueError("business hours must end after they start")
        check_country_and_region(self.country, self.region)
        return self


class Cadences(StrictModel):
    """How often recurring actions run; may only be more frequent than the level's."""

    update: Duration | None = Field(default=None, description="Updates.", examples=["14d"])
    harden: Duration | None = Field(
        default=None, description="Hardening enforcement.", examples=["30d"]
    )
    drift: Duration | None = Field(
        default=None, description="Hardening drift check.", examples=["7d"]
    )
    backup: Duration | None = Field(default=None, description="Backups.", examples=["1d"])
    drill: Duration | None = Field(default=None, description="Restore drills.", examples=["30d"])
    report: Duration | None = Field(default=None, description="Client reports.", examples=["30d"])


class Targets(StrictModel):
    """Recovery targets checked by restore drills and the availability target checked by
    the report; may only be tighter than the level's."""

    rpo: Duration | None = Field(
        default=None, description="Recovery point objective.", examples=["6h"]
    )
    rto: Duration | None = Field(
        default=None, description="Recovery time objective.", examples=["4h"]
    )
    availability: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description=(
            "Availability target: SLA uptime in percent, planned work left out; may only be "
            "higher than the level's."
        ),
        examples=[99.95],
    )


class ChangeLimits(StrictModel):
    """Limits on the client's changes; may only be tighter than the level's."""

    max_estimate: Duration | None = Field(
        default=None,
        description="Largest estimate of one change; may only be smaller than the level's.",
        examples=["8h"],
    )
    approval_required: bool | None = Field(
        default=None,
        description="A change needs a recorded approval before it is deployed (may only be added).",
        examples=[True],
    )
    deploy_allowed: bool | None = Field(
        default=None,
        description=(
            "Changes may be deployed (run CLIENT deploy --change ID); may only be turned off "
            "where the level allows it."
        ),
        examples=[False],
    )


class BacklogLimits(StrictModel):
    """Caps on the client's backlog; may only be lower than the level's."""

    wip_cap: int | None = Field(
        default=None,
        ge=1,
        description="Backlog items in progress at once, at most; may only be lower.",
        examples=[2],
    )
    open_cap: int | None = Field(
        default=None,
        ge=1,
        description="Open backlog items before new changes are refused; may only be lower.",
        examples=[8],
    )


#: S3's signature (SigV4) caps a presigned link at 7 days: a report's link lives 1 to 7.
LINK_DAYS_RANGE = (1, 7)


class ReportingOverrides(StrictModel):
    """Where the contract tightens the publication of its reports (`report --publish`)."""

    link_days: int | None = Field(
        default=None,
        description=(
            "Days a published report's links stay valid, 1 to 7 (S3 caps a presigned link "
            "at 7 days); may only be shorter than the level's."
        ),
        examples=[3],
    )

    @field_validator("link_days")
    @classmethod
    def _link_days(cls, value: int | None) -> int | None:
        low, high = LINK_DAYS_RANGE
        if value is not None and not low <= value <= high:
            raise ValueError(
                f"link_days must be {low} to {high} days: S3 signs a presigned link "
                f"for {high} days at most"
            )
        return value


class FitQuestionnaire(StrictModel):
    """The scoping questionnaire the diagnostic combines with what it finds on the hosts.

    Each answer is true, false or absent (not answered yet: to clarify).
    """

    in_production: bool | None = Field(
        default=None, description="The system is already in production.", examples=[True]
    )
    business_dependency: bool | None = Field(
        default=None,
        description="The business depends on it: continuity is required.",
        examples=[True],
    )
    availability_requirements: bool | None = Field(
        default=None, description="Availability requirements exist.", examples=[True]
    )
    sensitive_data: bool | None = Field(
        default=None, description="Data is sensitive or regulated.", examples=[False]
    )
    evolution_required: bool | None = Field(
        default=None,
        description="The system keeps evolving: iterative delivery is expected.",
        examples=[False],
    )
    stabilized: bool | None = Field(
        default=None,
        description="The system is stabilized (false: the priority is a diagnostic).",
        examples=[True],
    )
    experimental: bool | None = Field(
        default=None, description="The product is still experimental.", examples=[False]
    )
    governance_accepted: bool | None = Field(
        default=None,
        description="The client accepts governance: windows, approvals, traceable requests.",
        examples=[True],
    )
    notes: str = Field(
        default="", description="What the scoping call said.", examples=["Peak in summer."]
    )


class Contract(StrictModel):
    """The contract of one client, as written in ``client.yml``.

    A prospect (a system being scoped) has no ``level`` yet; it may also
    lack a business owner and windows. Only ``check`` and ``diagnose`` run
    for a prospect.
    """

    name: str = Field(
        pattern=CLIENT_NAME_PATTERN,
        description="Client identifier; must equal the folder name.",
        examples=["alpenhof"],
    )
    display_name: str = Field(
        min_length=1, description="Name shown in run logs and reports.", examples=["Hotel Alpenhof"]
    )
    language: Language = Field(
        default=Language.ENGLISH,
        description="Language of the client's periodic reports (run logs stay in English).",
        examples=["fr"],
    )
    sector: Sector = Field(description="The client's sector.", examples=["hotel"])
    level: Level | None = Field(
        default=None,
        description="Service level bought; absent for a prospect being scoped.",
        examples=["stability-security"],
    )
    business_owner: Person | None = Field(
        default=None,
        description="Who arbitrates business priorities and accepts changes.",
        examples=[{"name": "Anna Gruber", "email": "anna.gruber@alpenhof.example"}],
    )
    contacts: list[Contact] = Field(
        default_factory=list,
        description="People to inform about maintenance.",
        examples=[[{"role": "front desk", "name": "Jonas Maier", "phone": "+43 512 555 0101"}]],
    )
    escalation: list[EscalationStep] = Field(
        default_factory=list,
        description="Ordered escalation path for incidents.",
        examples=[
            [{"role": "owner", "name": "Anna Gruber", "phone": "+43 512 555 0100", "after": "1h"}]
        ],
    )
    windows: list[Window] = Field(
        default_factory=list,
        description="Maintenance windows in which changes may run (one at least, with a level).",
        examples=[[{"weekdays": ["tue"], "start": "22:00", "duration": "3h", "timezone": "UTC"}]],
    )
    freezes: list[Freeze] = Field(
        default_factory=list,
        description="Periods without non-emergency changes (added to the sector's).",
        examples=[
            [
                {
                    "name": "christmas",
                    "start": "2026-12-20",
                    "end": "2027-01-06",
                    "yearly": True,
                    "reason": "holiday season",
                }
            ]
        ],
    )
    scope: Scope = Field(
        default_factory=Scope,
        description="What is in and out of scope.",
        examples=[{"included": ["website"], "excluded": ["e-mail"]}],
    )
    health_checks: list[HealthCheck] = Field(
        default_factory=list,
        description="HTTP checks of the client's services.",
        examples=[[{"name": "site", "url": "http://198.18.0.11/health"}]],
    )
    backup: BackupOverrides = Field(
        default_factory=BackupOverrides,
        description="Backup paths, databases, repository and retention.",
        examples=[{"paths": ["/etc"]}],
    )
    updates: UpdateOverrides = Field(
        default_factory=UpdateOverrides,
        description="Package holds, approved versions and update scope.",
        examples=[{"holds": ["postgresql-15"]}],
    )
    response_times: ResponseTimes = Field(
        default_factory=ResponseTimes,
        description="Response times by priority.",
        examples=[{"p1": "30m"}],
    )
    cadences: Cadences = Field(
        default_factory=Cadences,
        description="Cadences of recurring actions.",
        examples=[{"drill": "7d"}],
    )
    targets: Targets = Field(
        default_factory=Targets,
        description="RPO, RTO and availability targets.",
        examples=[{"rpo": "6h"}],
    )
    changes: ChangeLimits = Field(
        default_factory=ChangeLimits,
        description="Limits on changes: largest estimate, approval before deployment.",
        examples=[{"max_estimate": "8h"}],
    )
    backlog: BacklogLimits = Field(
        default_factory=BacklogLimits,
        description="Caps on the backlog: items in progress at once, open items.",
        examples=[{"wip_cap": 2}],
    )
    business_hours: BusinessHours = Field(
        default_factory=BusinessHours,
        description="Business hours, public holidays and closures, in which SLA clocks run.",
        examples=[{"timezone": "Europe/Vienna", "country": "AT", "region": "7"}],
    )
    incidents: IncidentOverrides = Field(
        default_factory=IncidentOverrides,
        description="Severity table, SLA clocks and post-mortems tightened for incidents.",
        examples=[{"severity": {"security": {"major": "P1"}}}],
    )
    reporting: ReportingOverrides = Field(
        default_factory=ReportingOverrides,
        description="How long a published report's links stay valid.",
        examples=[{"link_days": 3}],
    )
    fit: FitQuestionnaire = Field(
        default_factory=FitQuestionnaire,
        description="Scoping questionnaire read by the diagnostic.",
        examples=[{"in_production": True, "stabilized": True, "governance_accepted": True}],
    )

    @property
    def is_prospect(self) -> bool:
        """Return whether no service level is contracted yet."""
        return self.level is None

    @property
    def time_zone(self) -> str:
        """Return the client's time zone: its business hours', else its first window's, else UTC."""
        if self.business_hours.timezone is not None:
            return self.business_hours.timezone
        return self.windows[0].timezone if self.windows else "UTC"

    @property
    def level_name(self) -> str:
        """Return the level's name, or ``prospect`` when none is contracted."""
        return self.level.value if self.level is not None else "prospect"


def contract_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of ``client.yml``."""
    schema = Contract.model_json_schema()
    schema["title"] = "webmg-ops client contract (client.yml)"
    return schema
