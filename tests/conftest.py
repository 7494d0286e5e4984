"""Shared fixtures: private inventories and ledgers, and the rehearsal lab.

Tests marked ``lab`` share one lab for the whole session (real hosts, real
SSH): a test that changes a host resets it. The lab runs on a private copy
of the demo inventories and a private lab directory; the base root file
system is cached across sessions. Without root (or a tool the lab needs),
lab tests fail, unless ``WEBMG_SKIP_LAB=1`` asks to skip them (never in CI).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import settings
from support.cli_result import CliResult
from support.consoles import widen_consoles
from support.lab import Lab, require_lab_capabilities
from support.restic import RESTIC_PASSWORD

from webmg_ops.backups.restic import Repository, init_repository
from webmg_ops.lab import mounts
from webmg_ops.ledger import OPERATOR_VARIABLE

# A run records who ran it and is refused without an operator; a fresh clone's git may
# name nobody. The suite's runs (in this process and the commands it starts) record this
# one, unless the person running the tests set their own.
os.environ.setdefault(OPERATOR_VARIABLE, "webmg-ops test suite")

# Property tests assert what holds, never how fast: Hypothesis's default 200 ms deadline
# per example is a timed assertion, which fails on a machine busy with the lab.
settings.register_profile("webmg", deadline=None)
settings.load_profile("webmg")

REPO = Path(__file__).resolve().parent.parent
DEMO_INVENTORIES = REPO / "inventories"
UP_TIMEOUT_SECONDS = 900

#: Fixtures that start a real outside tool: a test using one is marked ``tools``.
TOOL_FIXTURES = frozenset(
    {"empty_restic_repository", "repository", "s3_server", "locking_endpoint", "endpoint"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``tools`` every test that starts a real outside tool through a shared fixture,
    or runs on the PostgreSQL backend, so that ``-m "not lab and not tools"`` is the fast
    inner loop. (Modules whose every test runs a tool carry the mark themselves.)
    """
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and "postgresql" in callspec.id.split("-")
        if "lab" not in item.keywords and (uses & TOOL_FIXTURES or on_postgres):
            item.add_marker(pytest.mark.tools)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Print the seed of the shuffled order last, even under ``-q`` (which hides the
    header that names it), so that an order that failed can be replayed.
    """
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int):
        terminalreporter.write_line(f"Test order shuffled with --randomly-seed={seed}")


@pytest.fixture
def inventories(tmp_path: Path) -> Path:
    """Return a copy of the demo inventories that a test may change."""
    target = tmp_path / "inventories"
    shutil.copytree(
        DEMO_INVENTORIES, target, ignore=shutil.ignore_patterns("ssh", "known_hosts", "vault.yml")
    )
    return target


@pytest.fixture
def changed_hosts(lab: Lab) -> Iterator[list[str]]:
    """Return a list to which a test adds the hosts it changes; they are reset at its end."""
    hosts: list[str] = []
    yield hosts
    for host in dict.fromkeys(hosts):
        lab.reset(host)


@pytest.fixture(autouse=True)
def private_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give every test a var folder of its own (not created yet), set as WEBMG_VAR: a
    command a test runs never writes run logs or a ledger into the checkout's var/."""
    folder = tmp_path / "var"
    monkeypatch.setenv("WEBMG_VAR", str(folder))
    return folder


@pytest.fixture
def var(private_var: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return the test's private var folder (not created yet), set as WEBMG_VAR, with no
    vault password file inherited from the caller's environment."""
    monkeypatch.delenv("WEBMG_VAULT_PASSWORD_FILE", raising=False)
    return private_var


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    """Return the URL of a private SQLite ledger (not created yet)."""
    return f"sqlite:///{tmp_path / 'var' / 'ledger.db'}"


@pytest.fixture
def edit_contract(inventories: Path) -> Callable[[str, Callable[[dict], None]], Path]:
    """Return a function that edits a client's contract as data and writes it back."""

    def edit(client: str, change: Callable[[dict], None]) -> Path:
        file = inventories / client / "client.yml"
        data = yaml.safe_load(file.read_text())
        change(data)
        file.write_text(yaml.safe_dump(data, sort_keys=False))
        return file

    return edit


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    inventories: Path,
    ledger_url: str,
) -> Callable[..., CliResult]:
    """Return a function running ``webmg-ops`` in-process on the private inventories and ledger."""
    from webmg_ops.cli.main import main

    # Wide enough that tables do not wrap the words tests look for.
    widen_consoles(monkeypatch, 200)

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(["--inventories", str(inventories), "--ledger", ledger_url, *args])
        except SystemExit as done:
            code = int(done.code or 0)
        else:  # pragma: no cover - main always exits
            code = 0
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Bring the lab up once for the session; take it down and remove its folder at the end."""
    require_lab_capabilities()
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(
        DEMO_INVENTORIES,
        root / "inventories",
        ignore=shutil.ignore_patterns("ssh", "known_hosts", "vault.yml"),
    )
    running = Lab(root)
    done = running.cli("lab", "up", timeout=UP_TIMEOUT_SECONDS)
    try:
        assert done.returncode == 0, f"lab up failed ({done.returncode}): {done.stderr}"
        yield running
    finally:
        running.end_ssh_masters()
        running.cli("lab", "down")
        # The lab's folder holds extracted root file systems: do not leave them in /tmp.
        mounts.remove_tree(running.lab_dir)


@pytest.fixture(scope="session")
def prepared_target(lab: Lab) -> None:
    """The lab's backup target, prepared once by the agency's own run for every client."""
    done = lab.cli("run", "agency", "target", "--reason", "tests: the backup target", "--json")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")
def empty_restic_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised restic repository, copied for each test (init's key derivation is slow)."""
    folder = tmp_path_factory.mktemp("restic-template") / "repo"
    init_repository(
        Repository(str(folder), password=RESTIC_PASSWORD, cache_dir=folder.parent / "c")
    )
    return folder


@pytest.fixture
def repository(tmp_path: Path, empty_restic_repository: Path) -> Repository:
    """Return a private, empty restic repository (a local folder, the real restic binary)."""
    shutil.copytree(empty_restic_repository, tmp_path / "repo")
    return Repository(
        str(tmp_path / "repo"), password=RESTIC_PASSWORD, cache_dir=tmp_path / "cache"
    )
