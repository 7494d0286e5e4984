"""The contract cache saves parsing, never changes a result: with a cache that is warm,
stale, corrupt or hostile, reading a contract gives exactly what reading it without
any cache gives, and a broken contract the same error and exit status."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from webmg_ops.config.clients import ContractInvalid, load_client_contract
from webmg_ops.config.contract_cache import ContractCache, contract_cache_file
from webmg_ops.errors import BadInput, ExitCode

CLIENTS = ("alpenhof", "atelier-nord", "riverton", "terre-solidaire")
AT = "2026-11-28T12:00:00+00:00"


def _read(inventories: Path, name: str, file: Path) -> Any:
    """Read one client through the cache kept in ``file``, then save the cache."""
    cache = ContractCache.open(file)
    try:
        return load_client_contract(inventories, name, cache)
    finally:
        cache.save()


def _same(inventories: Path, name: str, file: Path) -> None:
    """Assert that reading through the cache gives what a cold read gives."""
    cold = load_client_contract(inventories, name)
    cached = _read(inventories, name, file)
    assert (cached.name, cached.folder, cached.hosts) == (cold.name, cold.folder, cold.hosts)
    assert cached.contract == cold.contract
    assert cached.policy == cold.policy


def _entries(file: Path) -> dict[str, Any]:
    entries: dict[str, Any] = json.loads(file.read_text())["contracts"]
    return entries


@pytest.fixture
def cache_file(private_var: Path) -> Path:
    """Return the cache file of an existing var folder."""
    private_var.mkdir(mode=0o700)
    return contract_cache_file(private_var)


@pytest.mark.parametrize("name", CLIENTS)
def test_a_warm_cache_gives_the_cold_reads_client(
    inventories: Path, cache_file: Path, name: str
) -> None:
    _same(inventories, name, cache_file)  # fills the cache
    raw = (inventories / name / "client.yml").read_bytes()
    assert ContractCache.open(cache_file).data(name, raw) == yaml.safe_load(raw)
    _same(inventories, name, cache_file)  # read from it


def test_dates_and_times_come_back_as_they_were_parsed(cache_file: Path) -> None:
    data = {
        "day": date(2026, 12, 20),
        "utc": datetime(2026, 12, 20, 8, 30, tzinfo=UTC),
        "offset": datetime(2026, 12, 20, 8, 30, 15, 250, tzinfo=timezone(timedelta(hours=-3))),
        "naive": datetime(2026, 12, 20, 8, 30),
        "list": [1, 1.5, True, None, "2026-12-20"],
    }
    cache = ContractCache.open(cache_file)
    cache.remember("alpenhof", b"bytes", data)
    cache.save()
    back = ContractCache.open(cache_file).data("alpenhof", b"bytes")
    assert back == data
    assert [type(value) for value in back.values()] == [type(value) for value in data.values()]
    assert [type(value) for value in back["list"]] == [int, float, bool, type(None), str]


@pytest.mark.parametrize(
    "data",
    [
        {"tags": {"a", "b"}},  # a set (!!set)
        {1: "a key that is no text"},
        {"\x00date": "2026-01-01"},  # would read back as a date
        {"ratio": float("nan")},
        {"blob": b"binary"},
    ],
)
def test_data_json_cannot_carry_back_is_not_cached(cache_file: Path, data: Any) -> None:
    cache = ContractCache.open(cache_file)
    cache.remember("alpenhof", b"bytes", data)
    assert cache.data("alpenhof", b"bytes") is None


def test_a_changed_contract_of_the_same_size_and_times_is_read_again(
    inventories: Path, cache_file: Path
) -> None:
    file = inventories / "riverton" / "client.yml"
    _same(inventories, "riverton", cache_file)
    before = file.stat()
    text = file.read_text()
    old_name = yaml.safe_load(text)["display_name"]
    new_name = old_name[::-1]
    assert len(new_name) == len(old_name) and new_name != old_name
    file.write_text(text.replace(old_name, new_name))
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert file.stat().st_size == before.st_size

    cached = _read(inventories, "riverton", cache_file)
    assert cached.contract.display_name == new_name
    _same(inventories, "riverton", cache_file)


def test_a_removed_contract_is_unknown_as_without_cache(
    inventories: Path, cache_file: Path
) -> None:
    _same(inventories, "riverton", cache_file)
    (inventories / "riverton" / "client.yml").unlink()
    with pytest.raises(BadInput) as cold:
        load_client_contract(inventories, "riverton")
    with pytest.raises(BadInput) as cached:
        _read(inventories, "riverton", cache_file)
    assert type(cached.value) is type(cold.value)
    assert cached.value.message == cold.value.message
    assert "unknown client 'riverton'" in cached.value.message


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff garbage",
        b"",
        b"[1, 2, 3]",
        b'{"format": 1, "contracts": [1]}',
        b'{"format": 99, "contracts": {}}',
        b'{"format": 1, "contracts": {"riverton": "not an entry"}}',
        b'{"format": 1, "contracts": {"riverton": {"sha256": 5, "data": {}}}}',
        b'{"format": 1, "contracts": {"riverton": {"sha256": "00", "data": {"\\u0000date": 5}}}}',
        b'{"format": 1, "contracts": {"riverton": {"sha256": "00", "data": NaN}}}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_a_corrupt_cache_is_ignored_and_rebuilt(
    inventories: Path, cache_file: Path, content: bytes
) -> None:
    cache_file.parent.mkdir()
    cache_file.write_bytes(content)
    _same(inventories, "riverton", cache_file)
    assert set(_entries(cache_file)) == {"riverton"}  # rebuilt: a valid file again
    _same(inventories, "riverton", cache_file)


def _forge(cache_file: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite the cache file's entries with ``change``, as someone with the var folder could."""
    document: dict[str, Any] = json.loads(cache_file.read_text())
    change(document["contracts"])
    cache_file.write_text(json.dumps(document))


def test_an_entry_with_another_clients_data_is_not_trusted(
    inventories: Path, cache_file: Path
) -> None:
    for name in ("alpenhof", "riverton"):
        _same(inventories, name, cache_file)
    riverton_digest = _entries(cache_file)["riverton"]["sha256"]

    def swap(entries: dict[str, Any]) -> None:
        # alpenhof's data, claiming to be what riverton's file parses to.
        entries["riverton"] = {"sha256": riverton_digest, "data": entries["alpenhof"]["data"]}

    _forge(cache_file, swap)
    _same(inventories, "riverton", cache_file)
    assert _read(inventories, "riverton", cache_file).contract.name == "riverton"


def test_an_entry_whose_data_does_not_validate_is_not_trusted(
    inventories: Path, cache_file: Path
) -> None:
    _same(inventories, "riverton", cache_file)
    _forge(cache_file, lambda entries: entries["riverton"]["data"].update(level="gold"))
    _same(inventories, "riverton", cache_file)


def test_an_entry_copied_under_another_name_is_not_used(
    inventories: Path, cache_file: Path
) -> None:
    _same(inventories, "alpenhof", cache_file)
    _forge(cache_file, lambda entries: entries.update(riverton=entries["alpenhof"]))
    _same(inventories, "riverton", cache_file)


def test_a_contract_broken_after_it_was_cached_gives_the_same_error(
    inventories: Path, cache_file: Path, edit_contract: Any
) -> None:
    _same(inventories, "riverton", cache_file)
    edit_contract("riverton", lambda data: data.update(level="gold"))
    with pytest.raises(ContractInvalid) as cold:
        load_client_contract(inventories, "riverton")
    with pytest.raises(ContractInvalid) as cached:
        _read(inventories, "riverton", cache_file)
    assert cached.value.message == cold.value.message
    assert "client.yml:" in cached.value.message and "level" in cached.value.message


def test_no_var_folder_is_made_for_the_cache(inventories: Path, private_var: Path) -> None:
    _same(inventories, "riverton", contract_cache_file(private_var))
    assert not private_var.exists()


def test_a_cache_that_cannot_be_written_is_left_alone(inventories: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache's folder would be\n")
    _same(inventories, "riverton", blocker / "contracts.json")
    assert blocker.read_text() == "a file where the cache's folder would be\n"


def test_due_reads_the_same_with_the_cache_warm_and_cold(
    cli: Callable[..., Any], private_var: Path
) -> None:
    private_var.mkdir(mode=0o700)
    cold = cli("due", "--at", AT, "--json")
    assert cold.code == ExitCode.OK, cold
    file = contract_cache_file(private_var)
    assert set(_entries(file)) >= {"alpenhof", "riverton", "terre-solidaire"}
    warm = cli("due", "--at", AT, "--json")
    assert (warm.code, warm.out, warm.err) == (cold.code, cold.out, cold.err)
    file.write_bytes(b"garbage")
    corrupt = cli("schedule", "--dry-run", "--at", AT, "--json")
    file.unlink()
    without = cli("schedule", "--dry-run", "--at", AT, "--json")
    assert (corrupt.code, corrupt.out, corrupt.err) == (without.code, without.out, without.err)


def test_due_reports_a_broken_contract_as_without_cache(
    cli: Callable[..., Any], private_var: Path, edit_contract: Any
) -> None:
    private_var.mkdir(mode=0o700)
    assert cli("due", "--at", AT, "--json").code == ExitCode.OK  # warms the cache
    edit_contract("riverton", lambda data: data.update(level="gold"))
    warm = cli("due", "--at", AT, "--json")
    contract_cache_file(private_var).unlink()
    cold = cli("due", "--at", AT, "--json")
    assert warm.code == cold.code == ExitCode.BAD_INPUT
    assert (warm.out, warm.err) == (cold.out, cold.err)
    assert "riverton/client.yml:" in warm.err
