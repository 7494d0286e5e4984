"""Contract values that reach shells, argv and files on hosts are refused at ``validate``.

Each case writes one hostile value into a copy of a demo contract and runs
the real ``validate``: it must exit 2, name the file, the line where the
value is written and the field, and write nothing (no ledger). The line is
found here by searching the written file for the value.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from webmg_ops.actions import update
from webmg_ops.config.clients import load_client
from webmg_ops.errors import BadInput, ExitCode
from webmg_ops.runs.records import RunRequest

FieldPath = tuple[str | int, ...]

#: client, field path, hostile value, field as the message names it, words of the reason.
HOSTILE_VALUES: list[tuple[str, FieldPath, Any, str, str]] = [
    # A database name is a dump file's name on the host (written as root) and pg_dump's --dbname.
    ("atelier-nord", ("backup", "databases", 0, "name"), "../../etc/cron.d/webmg",
     "backup.databases[0].name", "should match pattern"),
    ("atelier-nord", ("backup", "databases", 0, "name"), "demo host=198.18.0.66",
     "backup.databases[0].name", "should match pattern"),
    ("atelier-nord", ("backup", "databases", 0, "name"), "dbname=postgres",
     "backup.databases[0].name", "should match pattern"),
    ("atelier-nord", ("backup", "databases", 0, "name"), "-Upostgres",
     "backup.databases[0].name", "should match pattern"),
    ("atelier-nord", ("backup", "databases", 0, "path"), "/var/lib/app.db?mode=rwc",
     "backup.databases[0].path", "should match pattern"),
    ("atelier-nord", ("backup", "databases", 0, "host_group"), "all:!backup_target",
     "backup.databases[0].host_group", "should match pattern"),
    # The SFTP user is the account the target play creates or rewrites on the backup target.
    ("atelier-nord", ("backup", "repository"), "sftp:root@198.18.0.5:/srv/restic/atelier-nord",
     "backup.repository", "account 'root' has root's rights"),
    ("atelier-nord", ("backup", "repository"), "sftp:webmg@198.18.0.5:/srv/restic/atelier-nord",
     "backup.repository", "maintenance account"),
    ("atelier-nord", ("backup", "repository"), "sftp:sshd@198.18.0.5:/srv/restic/atelier-nord",
     "backup.repository", "already exists on a Debian server"),
    ("atelier-nord", ("backup", "repository"),
     "sftp:-oProxyCommand=touch@198.18.0.5:/srv/restic/atelier-nord",
     "backup.repository", "is not a POSIX account name"),
    ("atelier-nord", ("backup", "repository"), "sftp:restic@-oProxyCommand=x:/srv/restic/a",
     "backup.repository", "is not a DNS name or IPv4 address"),
    ("atelier-nord", ("backup", "repository"), "sftp:restic@198.18.0.5:/srv/restic/../../etc",
     "backup.repository", "without '.' or '..' segments"),
    # Backed-up paths and the restore check's folder (joined to the restore folder).
    ("atelier-nord", ("backup", "paths", 1), "/var/lib/../../root",
     "backup.paths[1]", "must not hold '.' or '..' segments"),
    ("atelier-nord", ("backup", "restore_check", "data"), "/var/lib/../../../etc",
     "backup.restore_check.data", "must not hold '.' or '..' segments"),
    ("atelier-nord", ("backup", "restore_check", "user"), "root",
     "backup.restore_check.user", "account 'root' has root's rights"),
    ("atelier-nord", ("backup", "restore_check", "user"), "toor",
     "backup.restore_check.user", "account 'toor' has root's rights"),
    ("atelier-nord", ("backup", "restore_check", "user"), "#0",
     "backup.restore_check.user", "should match pattern"),
    ("atelier-nord", ("backup", "restore_check", "user"), "-uroot",
     "backup.restore_check.user", "should match pattern"),
    ("atelier-nord", ("backup", "restore_check", "path"), "/health id",
     "backup.restore_check.path", "should match pattern"),
    ("atelier-nord", ("backup", "timer"), "--help",
     "backup.timer", "should match pattern"),
    # The approved-versions file is read on the controller.
    ("riverton", ("updates", "approved_versions_file"), "../alpenhof/client.yml",
     "updates.approved_versions_file", "should match pattern"),
    ("riverton", ("updates", "approved_versions_file"), "/etc/passwd",
     "updates.approved_versions_file", "should match pattern"),
    ("riverton", ("updates", "holds", 0), "-oAPT::Get::AllowUnauthenticated=1",
     "updates.holds[0]", "should match pattern"),
]  # fmt: skip


def _set(data: dict[str, Any], path: FieldPath, value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
    last = path[-1]
    if isinstance(last, int) and last >= len(node):
        node.append(value)
    else:
        node[last] = value


@pytest.fixture(autouse=True)
def private_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return the private var folder the commands would write to (runs, facts, ledger)."""
    var = tmp_path / "var"
    monkeypatch.setenv("WEBMG_VAR", str(var))
    return var


def _line_holding(file: Path, text: str) -> int:
    lines = [number for number, line in enumerate(file.read_text().splitlines(), 1) if text in line]
    assert len(lines) == 1, f"{text!r} is on lines {lines} of {file}"
    return lines[0]


@pytest.mark.parametrize(
    ("client", "path", "value", "field", "reason"),
    HOSTILE_VALUES,
    ids=[f"{case[3]}={case[2]}" for case in HOSTILE_VALUES],
)
def test_a_hostile_value_is_refused_at_validate_with_file_line_and_field(
    edit_contract: Callable[..., Path],
    cli: Callable[..., Any],
    tmp_path: Path,
    client: str,
    path: FieldPath,
    value: str,
    field: str,
    reason: str,
) -> None:
    def change(data: dict[str, Any]) -> None:
        if path[:2] == ("updates", "holds"):
            data.setdefault("updates", {})["holds"] = []
        _set(data, path, value)

    file = edit_contract(client, change)
    line = _line_holding(file, value)

    result = cli("validate", client)

    assert result.code == ExitCode.BAD_INPUT, result
    assert f"{file}:{line}: {field}: " in result.err, result
    assert reason in result.err, result
    assert "Traceback" not in result.err
    assert not (tmp_path / "var").exists(), "validate wrote something"


def test_an_approved_versions_file_linked_out_of_the_client_folder_is_refused(
    inventories: Path, cli: Callable[..., Any], tmp_path: Path
) -> None:
    approved = inventories / "riverton" / "approved-versions.yml"
    outside = tmp_path / "outside.yml"
    shutil.copyfile(approved, outside)
    approved.unlink()
    approved.symlink_to(outside)
    client_file = inventories / "riverton" / "client.yml"
    line = _line_holding(client_file, "approved_versions_file:")

    result = cli("validate", "riverton")

    assert result.code == ExitCode.BAD_INPUT, result
    assert f"{client_file}:{line}: updates.approved_versions_file: " in result.err
    assert f"resolves to {outside}, outside the client folder" in result.err
    assert not (tmp_path / "var").exists()


def test_an_approved_versions_file_linked_out_after_validation_is_refused_on_use(
    inventories: Path,
) -> None:
    riverton = load_client(inventories, "riverton")
    hosts = tuple(host.name for host in riverton.hosts)
    request = RunRequest("riverton", "update", extra_vars={"updates_mode": "approved"})
    assert update.make_extra_vars(riverton, hosts, request)["updates_approved_versions"]
    approved = inventories / "riverton" / "approved-versions.yml"
    secret = inventories.parent / "elsewhere.yml"
    secret.write_text('not-approved: "1.0"\n')
    approved.unlink()
    approved.symlink_to(secret)

    with pytest.raises(BadInput, match="outside the client folder"):
        update.make_extra_vars(riverton, hosts, request)


@pytest.mark.parametrize(
    "command",
    [("run", "atelier-nord", "backup", "--reason", "nightly"), ("drill", "atelier-nord")],
    ids=["backup", "drill"],
)
def test_a_run_on_a_contract_naming_root_on_the_backup_target_writes_nothing(
    edit_contract: Callable[..., Path],
    cli: Callable[..., Any],
    tmp_path: Path,
    command: tuple[str, ...],
) -> None:
    hostile = "sftp:root@198.18.0.5:/srv/restic/atelier-nord"
    file = edit_contract("atelier-nord", lambda data: data["backup"].update(repository=hostile))
    line = _line_holding(file, hostile)

    result = cli(*command)

    assert result.code == ExitCode.BAD_INPUT, result
    assert f"{file}:{line}: backup.repository: " in result.err
    assert "Traceback" not in result.err
    assert not (tmp_path / "var").exists(), "the refused run wrote something"
