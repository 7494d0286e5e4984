"""Contract validation: every kind of bad input names file, line and field, exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webmg_ops.config.clients import ContractInvalid, load_client
from webmg_ops.config.contract import contract_json_schema
from webmg_ops.errors import BadInput, ExitCode


def test_demo_clients_are_valid(cli) -> None:
    result = cli("validate")
    assert result.code == ExitCode.OK, result
    for name in ("alpenhof", "terre-solidaire", "riverton", "atelier-nord"):
        assert name in result.err


def _only_problem(inventories: Path, client: str) -> str:
    with pytest.raises(ContractInvalid) as caught:
        load_client(inventories, client)
    return str(caught.value)


def test_malformed_yaml_names_file_and_line(inventories: Path, cli) -> None:
    file = inventories / "alpenhof" / "client.yml"
    lines = file.read_text().splitlines()
    lines[9] = "  name: [unclosed"
    file.write_text("\n".join(lines) + "\n")
    result = cli("validate", "alpenhof")
    assert result.code == ExitCode.BAD_INPUT
    assert f"{file}:" in result.err
    assert "malformed YAML" in result.err
    assert "Traceback" not in result.err


def test_unknown_key_is_rejected_with_its_line(inventories: Path, cli) -> None:
    file = inventories / "alpenhof" / "client.yml"
    text = file.read_text().replace("sector: hotel\n", "sector: hotel\nsectr: hotel\n")
    file.write_text(text)
    line = text.splitlines().index("sectr: hotel") + 1
    result = cli("validate", "alpenhof")
    assert result.code == ExitCode.BAD_INPUT
    assert f"{file}:{line}: sectr: unknown key" in result.err


def test_wrong_type_and_bad_time_zone_are_all_listed(edit_contract, inventories: Path) -> None:
    def change(data: dict) -> None:
        data["windows"][0]["timezone"] = "Europe/Atlantis"
        data["health_checks"][0]["expect_status"] = "two hundred"

    file = edit_contract("alpenhof", change)
    message = _only_problem(inventories, "alpenhof")
    assert "2 problems found" in message
    assert "windows[0].timezone: Value error, unknown IANA time zone 'Europe/Atlantis'" in message
    assert "health_checks[0].expect_status" in message
    lines = file.read_text().splitlines()
    tz_line = next(i for i, line in enumerate(lines, 1) if "Europe/Atlantis" in line)
    assert f"{file}:{tz_line}: windows[0].timezone" in message


def test_missing_field_points_at_its_parent(edit_contract, inventories: Path) -> None:
    def change(data: dict) -> None:
        del data["business_owner"]["name"]

    file = edit_contract("alpenhof", change)
    message = _only_problem(inventories, "alpenhof")
    line = file.read_text().splitlines().index("business_owner:") + 1
    assert f"{file}:{line}: business_owner.name: Field required" in message


def test_looser_override_is_rejected_with_reason(edit_contract, inventories: Path, cli) -> None:
    edit_contract("riverton", lambda data: data.update(cadences={"drill": "30d"}))
    result = cli("validate", "riverton")
    assert result.code == ExitCode.BAD_INPUT
    assert (
        "cadences.drill: 30d is looser than the level institutional-sla default of 7d" in result.err
    )
    assert "a contract may only tighten its level" in result.err


def test_looser_update_mode_and_retention_are_rejected(edit_contract, inventories: Path) -> None:
    def change(data: dict) -> None:
        data["updates"]["mode"] = "all"
        data["backup"]["retention"] = {"daily": 3}

    edit_contract("riverton", change)
    message = _only_problem(inventories, "riverton")
    assert "updates.mode: all is looser" in message
    assert "backup.retention: 3 daily is looser" in message


def test_always_open_window_needs_lab_hosts(inventories: Path) -> None:
    hosts = inventories / "atelier-nord" / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("198.18.0.41", "203.0.113.41"))
    message = _only_problem(inventories, "atelier-nord")
    assert "windows[0].always: an always-open window is allowed only when every host" in message


def test_name_must_match_folder(edit_contract, inventories: Path) -> None:
    edit_contract("alpenhof", lambda data: data.update(name="alpenhof-two"))
    assert "differs from the folder name 'alpenhof'" in _only_problem(inventories, "alpenhof")


@pytest.mark.parametrize("name", ["../alpenhof", "alpen hof", "a;rm -rf", "$(id)", "Alpenhof", ""])
def test_unsafe_client_names_are_refused(inventories: Path, name: str) -> None:
    with pytest.raises(BadInput, match="invalid client name"):
        load_client(inventories, name)


def test_unknown_client(cli) -> None:
    result = cli("policy", "nosuchclient")
    assert result.code == ExitCode.BAD_INPUT
    assert "Error: unknown client 'nosuchclient'" in result.err
    assert "known: agency, alpenhof, atelier-nord, riverton, terre-solidaire" in result.err


def test_validate_json_lists_problems(inventories: Path, cli) -> None:
    file = inventories / "terre-solidaire" / "client.yml"
    file.write_text(file.read_text().replace("level: continuous-evolution", "level: gold"))
    result = cli("validate", "--json")
    assert result.code == ExitCode.BAD_INPUT
    report = {item["client"]: item for item in json.loads(result.out)}
    assert report["alpenhof"]["valid"] is True
    (problem,) = report["terre-solidaire"]["problems"]
    assert problem["field"] == "level"
    assert problem["line"] == 6


def test_broken_inventory_is_reported(inventories: Path) -> None:
    (inventories / "alpenhof" / "hosts.yml").write_text("all: [this is: not, an inventory\n")
    message = _only_problem(inventories, "alpenhof")
    assert "hosts.yml" in message


@pytest.mark.parametrize(
    "inventory",
    ["all: {}\n", "all:\n  children:\n    web:\n      hosts: {}\n"],
    ids=["no-groups", "empty-group"],
)
def test_inventory_without_hosts_is_a_contract_error(
    inventories: Path, cli, inventory: str
) -> None:
    file = inventories / "alpenhof" / "hosts.yml"
    file.write_text(inventory)
    result = cli("validate", "alpenhof")
    assert result.code == ExitCode.BAD_INPUT, result
    assert f"{file}:1: the inventory lists no hosts" in result.err
    assert "ok alpenhof" not in result.err


def test_schema_documents_every_field() -> None:
    schema = contract_json_schema()

    def walk(properties: dict, where: str) -> None:
        for name, spec in properties.items():
            assert spec.get("description"), f"{where}.{name} has no description"
            assert "examples" in spec, f"{where}.{name} has no example"

    walk(schema["properties"], "Contract")
    for definition, spec in schema["$defs"].items():
        walk(spec.get("properties", {}), definition)


def test_schema_command_prints_json(cli) -> None:
    result = cli("schema")
    assert result.code == ExitCode.OK
    assert json.loads(result.out)["title"].startswith("webmg-ops client contract")


def test_invalid_input_writes_nothing(inventories: Path, tmp_path: Path, cli) -> None:
    file = inventories / "alpenhof" / "client.yml"
    file.write_text(file.read_text().replace("sector: hotel", "sector: casino"))
    result = cli("note", "alpenhof", "--text", "should not be recorded")
    assert result.code == ExitCode.BAD_INPUT
    assert not (tmp_path / "var").exists()
