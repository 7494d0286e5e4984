"""The contract's donor export: where it must be, which hosts hold it, who checks it."""

from __future__ import annotations

from pathlib import Path

from webmg_ops.actions.backup import export_hosts
from webmg_ops.config.clients import load_client
from webmg_ops.errors import ExitCode


def test_the_ngo_names_its_export_on_its_web_nodes(inventories: Path) -> None:
    client = load_client(inventories, "terre-solidaire")
    export = client.contract.backup.donor_export
    assert export is not None
    assert (export.path, export.host_group, export.min_rows) == (
        "/var/lib/webmg-demo/exports/donors.csv",
        "web",
        1,
    )
    # The NGO's level asks for the check; the database host holds no export.
    assert client.policy.get("checks.donor_export") is True
    hosts = ("terre-db1", "terre-web1", "terre-web2")
    assert export_hosts(client, hosts) == ("terre-web1", "terre-web2")
    assert export_hosts(client, ("terre-db1",)) == ()


def test_without_a_group_every_backed_up_host_holds_the_export(
    edit_contract, inventories: Path
) -> None:
    edit_contract("terre-solidaire", lambda data: data["backup"]["donor_export"].pop("host_group"))
    client = load_client(inventories, "terre-solidaire")
    assert export_hosts(client, ("terre-db1", "terre-web2")) == ("terre-db1", "terre-web2")


def test_an_export_outside_the_backed_up_paths_is_a_contract_error(
    edit_contract, inventories: Path, cli
) -> None:
    def change(data: dict) -> None:
        # /var/lib/webmg-demo-old shares a prefix with a backed-up path, not a folder.
        data["backup"]["donor_export"]["path"] = "/var/lib/webmg-demo-old/donors.csv"

    file = edit_contract("terre-solidaire", change)
    before = file.read_text()
    result = cli("validate", "terre-solidaire")
    assert result.code == ExitCode.BAD_INPUT
    assert (
        "backup: Value error, donor_export.path '/var/lib/webmg-demo-old/donors.csv' is not "
        "inside any of backup.paths" in result.err
    )
    assert "Traceback" not in result.err
    assert file.read_text() == before


def test_an_export_path_may_be_a_backed_up_path_itself(edit_contract, inventories: Path) -> None:
    def change(data: dict) -> None:
        data["backup"]["paths"].append("/srv/exports/donors.csv")
        data["backup"]["donor_export"]["path"] = "/srv/exports/donors.csv"

    edit_contract("terre-solidaire", change)
    export = load_client(inventories, "terre-solidaire").contract.backup.donor_export
    assert export is not None and export.path == "/srv/exports/donors.csv"


def test_a_bad_export_field_names_its_line(edit_contract, inventories: Path, cli) -> None:
    def change(data: dict) -> None:
        data["backup"]["donor_export"]["min_rows"] = -1
        data["backup"]["donor_export"]["max_age"] = "soon"

    file = edit_contract("terre-solidaire", change)
    result = cli("validate", "terre-solidaire")
    assert result.code == ExitCode.BAD_INPUT
    line = file.read_text().splitlines().index("    min_rows: -1") + 1
    assert f"{file}:{line}: backup.donor_export.min_rows" in result.err
    assert "backup.donor_export.max_age" in result.err
