"""SSH control folders: another local user can neither choose nor enter a run's folder.

Before, a run's control folder was ``/tmp/webmg-cp-<hash of its private
path>``, created with ``exist_ok``: a local user who made that folder first
(mode 0777, or a symbolic link) received the run's SSH master sockets, and
through them a shell on every client host of the run.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from webmg_ops.ansible.runner import (
    CONTROL_DIR_FILE,
    Job,
    check_private_folder,
    remove_control_dir,
    run_playbook,
)
from webmg_ops.errors import EnvironmentProblem, ExitCode
from webmg_ops.secrets import SecretSet

PLAYBOOK = Path(__file__).resolve().parent.parent / "playbooks" / "control-dir.yml"
#: An account that is not the one running the tests.
OTHER_UID = 65534


def _predictable_name(private_dir: Path) -> Path:
    # The name the earlier code gave a run's control folder (computed here, not imported).
    digest = hashlib.sha256(str(private_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"webmg-cp-{digest}"


def _local_inventory(tmp_path: Path) -> Path:
    inventory = tmp_path / "hosts.yml"
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"local1": host}}}))
    return inventory


@pytest.mark.tools
def test_a_folder_made_first_by_another_user_is_not_used(tmp_path: Path) -> None:
    private_dir = tmp_path / "var" / "runs" / "run-cp" / "ansible"
    planted = _predictable_name(private_dir)
    planted.mkdir()
    try:
        planted.chmod(0o777)
        os.chown(planted, OTHER_UID, OTHER_UID)
        result = run_playbook(
            Job(
                run_id="run-cp",
                playbook=PLAYBOOK,
                inventory=_local_inventory(tmp_path),
                private_dir=private_dir,
            ),
            ["local1"],
            SecretSet(),
        )
        assert result.ok, result
        used = result.evidence["control_dir"]
        folder = Path(used["path"])
        assert folder != planted
        assert folder.parent == Path(tempfile.gettempdir())
        assert folder.name.startswith("webmg-cp-")
        assert (used["mode"], int(used["uid"]), used["islnk"]) == ("0700", os.geteuid(), False)
        assert not folder.exists(), "the folder is removed after the run"
        assert not (private_dir / CONTROL_DIR_FILE).exists()
        assert list(planted.iterdir()) == []
    finally:
        planted.rmdir()


@pytest.fixture
def private(tmp_path: Path) -> Path:
    folder = tmp_path / "control"
    folder.mkdir(mode=0o700)
    folder.chmod(0o700)
    return folder


def _refusal(folder: Path) -> str:
    with pytest.raises(EnvironmentProblem) as refused:
        check_private_folder(folder)
    assert refused.value.exit_code == ExitCode.ENVIRONMENT
    return refused.value.message


def test_a_private_folder_is_accepted(private: Path) -> None:
    assert check_private_folder(private) == private


def test_a_folder_owned_by_another_user_is_refused(private: Path) -> None:
    os.chown(private, OTHER_UID, OTHER_UID)
    message = _refusal(private)
    assert str(private) in message
    assert f"owned by uid {OTHER_UID}" in message


def test_a_folder_open_to_others_is_refused(private: Path) -> None:
    private.chmod(0o777)
    assert _refusal(private) == (
        f"SSH control folder {private} is open to group or others (mode 0777): refusing to use it"
    )


def test_a_symbolic_link_is_refused(private: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(private)
    assert "is a symbolic link" in _refusal(link)


def test_a_recorded_folder_replaced_by_a_link_is_not_followed(
    private: Path, tmp_path: Path
) -> None:
    (private / "keep").write_text("not the run's")
    link = tmp_path / "link"
    link.symlink_to(private)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / CONTROL_DIR_FILE).write_text(str(link))
    remove_control_dir(run_dir)
    assert (private / "keep").read_text() == "not the run's"
    assert stat.S_ISLNK(link.lstat().st_mode)
