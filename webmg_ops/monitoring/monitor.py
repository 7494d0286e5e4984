"""The monitor: every health check probed at its client's interval, samples stored,
incidents opened after failures in a row and their recovery recorded.

Threads, no busy loop: the scheduler waits on an :class:`threading.Event` until the
next probe is due (or until it is told to stop), a small pool of workers probes,
and one writer stores the samples in batches and runs the detection on what it
stored. :meth:`Monitor.stop` (SIGTERM, SIGINT) ends the scheduler; probes under way
finish, and every sample taken is stored before :meth:`Monitor.run` returns.

A failure is *planned* when the client has a run recorded as started and not
finished, or when one of its maintenance windows is open (an always-open window
excepted: it means "no restriction", not "maintenance all the time"). A freeze is
not planned work. Planned failures are stored as such and open no incident.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from webmg_ops.config.calendar import freeze_periods, window_openings
from webmg_ops.config.clients import Client
from webmg_ops.config.contract import HealthCheck
from webmg_ops.errors import WebmgError
from webmg_ops.ledger import Ledger, LedgerReader
from webmg_ops.ledger.samples import Sample, prune, read_samples, roll_up, store_samples
from webmg_ops.monitoring.probe import ProbeResult, probe
from webmg_ops.runs.records import RUN_FINISHED, RUN_STARTED
from webmg_ops.service.detection import (
    awaiting_recovery,
    record_detected_open,
    record_recovery,
)
from webmg_ops.service.records import DerivedRecorder

log = logging.getLogger(__name__)

#: Probes run at once, at most: probes mostly wait on the network.
MAX_WORKERS = 32
#: The first round of probes is spread over this much time per check, at least the
#: minimum and at most the interval: later rounds keep that rhythm, so a thousand checks
#: are probed evenly through their minute instead of all at once.
SPREAD_PER_CHECK = timedelta(milliseconds=50)
MIN_SPREAD = timedelta(seconds=5)
#: Samples are stored at least this often, and in batches of at most this many.
FLUSH_EVERY_S = 1.0
FLUSH_BATCH = 500
#: Samples are rolled up by day and pruned this often.
MAINTENANCE_EVERY = timedelta(hours=1)
#: The open incidents awaiting recovery are read again from the ledger this often: one
#: closed by hand while its service is still down no longer holds a new one back.
AWAITING_REFRESH_S = 60.0


def probe_interval(client: Client, at: datetime) -> timedelta | None:
    """Given a client and an aware instant, return how often its checks are probed then:
    the policy's freeze interval inside one of its freezes (where the policy has one),
    its interval otherwise (None: availability is not monitored on its level)."""
    policy = client.policy
    interval: timedelta | None = policy.get("monitoring.interval")
    in_freezes: timedelta | None = policy.get("monitoring.freeze_interval")
    if in_freezes is not None and freeze_periods(
        policy.freezes, client.contract.time_zone, at, at + timedelta(seconds=1)
    ):
        return in_freezes if interval is None else min(interval, in_freezes)
    return interval


def page_budget(client: Client, check: HealthCheck) -> int | None:
    """Given a client and one of its checks, return the page-weight budget in bytes when
    the policy has the mobile page-weight check and the check declares one, else None."""
    if check.page_weight_kb is None or not client.policy.get("checks.mobile_page_weight"):
        return None
    return check.page_weight_kb * 1000


def open_runs(ledger: LedgerReader, client: str) -> list[str]:
    """Given the ledger and a client, return the ids of its runs started and not finished."""
    started: dict[str, None] = {}
    for entry in ledger.entries(client=client, kinds=(RUN_STARTED, RUN_FINISHED)):
        run_id = str(entry.payload.get("run_id"))
        if entry.kind == RUN_STARTED:
            started[run_id] = None
        else:
            started.pop(run_id, None)
    return list(started)


def planned_by(ledger: LedgerReader, client: Client, at: datetime) -> str | None:
    """Given the ledger, a client and an aware instant, return what makes a failure then
    planned (``run RUN-ID`` or ``window NAME``), or None when it is an outage."""
    runs = open_runs(ledger, client.name)
    if runs:
        return f"run {runs[-1]}"
    for window in client.contract.windows:
        if window.always:
            continue
        if next(window_openings(window, at, at + timedelta(microseconds=1)), None):
            return f"window {window.name}"
    return None


@dataclass(frozen=True)
class Target:
    """One health check of one client, as the monitor probes it."""

    client: Client
    check: HealthCheck

    @property
    def key(self) -> tuple[str, str]:
        """Return (client, check name)."""
        return (self.client.name, self.check.name)


def monitored_targets(clients: Iterable[Client], at: datetime) -> list[Target]:
    """Given clients and an instant, return the health checks of those whose policy
    monitors availability, client by client; a prospect (no level yet) is not monitored."""
    return [
        Target(client, check)
        for client in clients
        if not client.contract.is_prospect and probe_interval(client, at) is not None
        for check in client.contract.health_checks
    ]


#: Probes one check (the tests and the benchmark may hand their own).
Prober = Callable[[HealthCheck, int | None], ProbeResult]


def _default_prober(check: HealthCheck, budget: int | None) -> ProbeResult:
    return probe(check, page_budget=budget)


@dataclass
class Detection:
    """What the writer decided after storing samples: incidents opened, recoveries."""

    opened: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)


class Monitor:
    """Probes targets, stores their samples, opens incidents and records recoveries.

    ``ledger`` is the writable ledger the samples go to (and planned runs are read
    from); ``record`` appends the incidents' entries (the service's recorder);
    ``on_sample`` sees each sample as it is taken (the metrics).
    """

    def __init__(
        self,
        targets: Sequence[Target],
        ledger: Ledger,
        record: DerivedRecorder,
        *,
        prober: Prober = _default_prober,
        on_sample: Callable[[Target, Sample], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        workers: int = MAX_WORKERS,
    ) -> None:
        self.targets = list(targets)
        self.ledger = ledger
        self.record = record
        self.prober = prober
        self.on_sample = on_sample
        self.clock = clock
        self.workers = max(1, min(workers, len(self.targets) or 1))
        self.stopping = threading.Event()
        self.detection = Detection()
        self._samples: queue.Queue[tuple[Target, Sample]] = queue.Queue()
        self._awaiting: set[tuple[str, str]] = set()
        self._awaiting_read = 0.0
        self._stored = 0
        self._stored_lock = threading.Lock()

    # --- one probe ---------------------------------------------------------

    def take_sample(self, target: Target) -> Sample:
        """Given a target, probe it and return its sample (failures marked planned when a
        run or a window explains them). Never raises for a failing service."""
        at = self.clock()
        result = self.prober(target.check, page_budget(target.client, target.check))
        reason: str | None = None
        if not result.up:
            try:
                reason = planned_by(self.ledger, target.client, at)
            except WebmgError as error:
                log.warning("cannot tell whether %s's failure is planned: %s", target.key, error)
        return Sample(
            client=target.client.name,
            check=target.check.name,
            at=at,
            up=result.up,
            status=result.status,
            latency_ms=result.latency_ms,
            cert_days=result.cert_days,
            cause=result.cause,
            detail=result.detail,
            page_bytes=result.page_bytes,
            page_budget=page_budget(target.client, target.check),
            planned=reason is not None,
            planned_by=reason,
        )

    def _probe_into_queue(self, target: Target) -> None:
        try:
            sample = self.take_sample(target)
        except Exception:  # a bug in one probe must not stop the others
            log.exception("probe of %s failed unexpectedly", target.key)
            return
        if self.on_sample is not None:
            self.on_sample(target, sample)
        self._samples.put((target, sample))

    # --- storing and detecting ----------------------------------------------

    def _load_awaiting(self) -> None:
        awaiting: set[tuple[str, str]] = set()
        for client in {target.client.name: target.client for target in self.targets}.values():
            if client.policy.get("monitoring.auto_incidents"):
                for check in awaiting_recovery(self.ledger, client.name):
                    awaiting.add((client.name, check))
        self._awaiting = awaiting
        self._awaiting_read = time.monotonic()

    def _detect(self, target: Target, sample: Sample) -> None:
        client, check = target.client, target.check
        if not client.policy.get("monitoring.auto_incidents"):
            return
        if sample.up:
            if target.key in self._awaiting:
                entry = record_recovery(self.record, client, check, now=sample.at)
                self._awaiting.discard(target.key)
                if entry is not None:
                    self.detection.recovered.append(f"{client.name}/{check.name}")
                    log.warning("%s / %s recovered", client.name, check.name)
            return
        if sample.planned or target.key in self._awaiting:
            return
        needed = int(client.policy.get("monitoring.failures_to_open"))
        newest = read_samples(
            self.ledger, client.name, check=check.name, newest_first=True, limit=needed
        )
        row = []
        for item in newest:
            if item.up or item.planned:
                break
            row.append(item)
        if len(row) < needed:
            return
        entry = record_detected_open(
            self.record,
            client,
            check,
            failures=len(row),
            cause=sample.cause,
            since=row[-1].at,
            now=sample.at,
        )
        # Opened now or earlier by another monitor: either way it awaits its recovery.
        self._awaiting.add(target.key)
        if entry is not None:
            self.detection.opened.append(f"{client.name}/{check.name}")
            log.warning("%s / %s: incident opened after %d failures", *target.key, len(row))

    def _store(self, batch: list[tuple[Target, Sample]]) -> None:
        store_samples(self.ledger, [sample for _target, sample in batch])
        with self._stored_lock:
            self._stored += len(batch)
        if time.monotonic() - self._awaiting_read > AWAITING_REFRESH_S:
            try:
                self._load_awaiting()
            except WebmgError as error:
                log.error("cannot read the open incidents: %s", error)
        for target, sample in batch:
            try:
                self._detect(target, sample)
            except WebmgError as error:
                log.error("detection for %s failed: %s", target.key, error)

    def _drain(self, first: tuple[Target, Sample] | None = None) -> list[tuple[Target, Sample]]:
        batch = [first] if first is not None else []
        while len(batch) < FLUSH_BATCH:
            try:
                batch.append(self._samples.get_nowait())
            except queue.Empty:
                break
        return batch

    def _writer(self, done: threading.Event) -> None:
        while not (done.is_set() and self._samples.empty()):
            try:
                first = self._samples.get(timeout=FLUSH_EVERY_S)
            except queue.Empty:
                continue
            batch = self._drain(first)
            try:
                self._store(batch)
            except WebmgError as error:
                # The database is away: keep the samples and try again on the next flush.
                log.error("cannot store %d sample(s): %s", len(batch), error)
                for item in batch:
                    self._samples.put(item)
                if done.is_set():
                    return
                self.stopping.wait(FLUSH_EVERY_S)

    @property
    def stored(self) -> int:
        """Return how many samples were stored so far."""
        with self._stored_lock:
            return self._stored

    # --- retention ------------------------------------------------------------

    def maintain(self) -> None:
        """Roll complete days up and prune samples and days past each client's retention."""
        now = self.clock()
        try:
            roll_up(self.ledger, now)
            for client in {target.client.name: target.client for target in self.targets}.values():
                policy = client.policy
                prune(
                    self.ledger,
                    client.name,
                    samples_before=now - policy.get("monitoring.samples_kept"),
                    days_before=now - policy.get("monitoring.days_kept"),
                )
        except WebmgError as error:
            log.error("rolling samples up failed: %s", error)

    # --- the two ways to run ------------------------------------------------

    def run_once(self) -> list[Sample]:
        """Probe every target once, store the samples, detect; return the samples."""
        self._load_awaiting()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="probe") as pool:
            samples = list(pool.map(self.take_sample, self.targets))
        pairs = list(zip(self.targets, samples, strict=True))
        if self.on_sample is not None:
            for target, sample in pairs:
                self.on_sample(target, sample)
        self._store(pairs)
        self.maintain()
        return samples

    def stop(self) -> None:
        """Ask :meth:`run` to end: no new probe starts; the samples taken are stored."""
        self.stopping.set()

    def run(self, ready: Callable[[], None] | None = None) -> None:
        """Probe each target at its client's interval until :meth:`stop`; store every
        sample taken before returning. ``ready`` is called once the first round is
        scheduled."""
        self._load_awaiting()
        writer_done = threading.Event()
        writer = threading.Thread(target=self._writer, args=(writer_done,), name="samples")
        writer.start()
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="probe")
        try:
            self._schedule(pool, ready)
        finally:
            # Probes under way end (each within its check's time); queued ones never start.
            pool.shutdown(wait=True, cancel_futures=True)
            writer_done.set()
            writer.join()

    def _schedule(self, pool: ThreadPoolExecutor, ready: Callable[[], None] | None) -> None:
        start = time.monotonic()
        due: list[tuple[float, int]] = []
        count = len(self.targets)
        for index, target in enumerate(self.targets):
            interval = probe_interval(target.client, self.clock()) or MAINTENANCE_EVERY
            spread = min(interval, max(MIN_SPREAD, SPREAD_PER_CHECK * count)).total_seconds()
            heapq.heappush(due, (start + spread * index / max(count, 1), index))
        next_maintenance = start
        if ready is not None:
            ready()
        while not self.stopping.is_set():
            now = time.monotonic()
            if now >= next_maintenance:
                pool.submit(self.maintain)
                next_maintenance = now + MAINTENANCE_EVERY.total_seconds()
            while due and due[0][0] <= now:
                at, index = heapq.heappop(due)
                target = self.targets[index]
                pool.submit(self._probe_into_queue, target)
                interval = probe_interval(target.client, self.clock()) or MAINTENANCE_EVERY
                # The next probe keeps the rhythm, but never piles up after a pause.
                heapq.heappush(due, (max(at + interval.total_seconds(), now), index))
            wake = min(due[0][0] if due else next_maintenance, next_maintenance)
            self.stopping.wait(max(wake - time.monotonic(), 0.0))
