"""Each read of a client's inventory sees its variable files as they are at that moment,
however many reads one process makes (Ansible caches what it found, process-wide)."""

from __future__ import annotations

from pathlib import Path

from webmg_ops.ansible.connection import read_inventory_variables

CLIENT = "atelier-nord"


def test_a_variable_file_added_or_removed_between_reads_is_seen(inventories: Path) -> None:
    folder = inventories / CLIENT
    # The web group's variables are a folder (group_vars/web/): a file added to it is read.
    web_vars = folder / "group_vars" / "web" / "reads.yml"
    assert web_vars.parent.is_dir() and not web_vars.exists()
    before = read_inventory_variables(folder).variables["atelier-web1"]
    assert "reads_marker" not in before
    web_vars.write_text("reads_marker: added\n")
    added = read_inventory_variables(folder).variables
    assert added["atelier-web1"]["reads_marker"] == "added"
    assert "reads_marker" not in added["atelier-db1"]
    # Removed again: the next read neither looks for it in vain nor still sees its value.
    web_vars.unlink()
    after = read_inventory_variables(folder).variables["atelier-web1"]
    assert "reads_marker" not in after
