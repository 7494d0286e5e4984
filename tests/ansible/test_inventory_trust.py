"""A client's inventory folder is data, never code on the controller.

Each test plants an attack in a real client folder (a copy of the demo
inventories) and runs the real command line and the real Ansible library:
an executable ``hosts.yml``, a ``lookup('pipe', ...)`` in ``group_vars``,
connection variables that weaken host-key checking, a client ``ansible.cfg``
beyond speed. The attacks write a marker file when they succeed; the tests
first show that plain Ansible does run them, then that webmg-ops refuses them
with exit 2, names the file and writes nothing.
"""

from __future__ import annotations

import itertools
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from webmg_ops.ansible.connection import (
    ansible_trust_environment,
    project_ssh_args,
    read_inventory_variables,
)
from webmg_ops.ansible.runner import ANSIBLE_CFG
from webmg_ops.ansible.vault import Vault
from webmg_ops.errors import BadInput, ExitCode
from webmg_ops.remote.ssh import openssh_argv

CLIENT = "atelier-nord"
TOOLS = Path(sys.executable).parent
VAULT_PASSWORD = b"vault password of the test\n"


def _ansible_inventory(folder: Path, environment: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the real ``ansible-inventory --list`` on the client's hosts file."""
    return subprocess.run(
        [str(TOOLS / "ansible-inventory"), "--list", "-i", str(folder / "hosts.yml")],
        env={**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_CFG), **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _assert_refused(done: object, *expected: str) -> None:
    code, err = done.code, done.err  # type: ignore[attr-defined]
    assert code == ExitCode.BAD_INPUT, done
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err


@pytest.fixture
def folder(inventories: Path) -> Path:
    return inventories / CLIENT


@pytest.fixture
def no_ledger(ledger_url: str) -> Callable[[], bool]:
    path = Path(ledger_url.removeprefix("sqlite:///"))
    return lambda: not path.exists()


# --- (a) static inventories only ----------------------------------------------


def _plant_inventory_script(folder: Path, marker: Path) -> Path:
    hosts = folder / "hosts.yml"
    hosts.write_text(
        "#!/bin/sh\n"
        f"touch {shlex.quote(str(marker))}\n"
        'echo \'{"_meta": {"hostvars": {}}, "all": {"hosts": ["evil"]}}\'\n'
    )
    hosts.chmod(0o755)
    return hosts


def test_plain_ansible_runs_an_executable_inventory(folder: Path, tmp_path: Path) -> None:
    # The attack is real: with Ansible's defaults, reading the inventory runs it.
    marker = tmp_path / "script-ran"
    _plant_inventory_script(folder, marker)
    _ansible_inventory(folder, {})
    assert marker.exists()


def test_executable_inventory_is_refused_and_never_run(
    cli, folder: Path, tmp_path: Path, no_ledger: Callable[[], bool]
) -> None:
    marker = tmp_path / "script-ran"
    hosts = _plant_inventory_script(folder, marker)
    for command in (
        ("validate", CLIENT),
        ("run", CLIENT, "check", "--reason", "attack"),
        ("enroll", CLIENT, "--accept", "SHA256:x"),
        ("plan", CLIENT, "check"),
    ):
        _assert_refused(cli(*command), f"{hosts}:1", "an executable file is refused")
    assert not marker.exists()
    assert no_ledger()


def test_ansible_processes_read_static_inventories_only(folder: Path, tmp_path: Path) -> None:
    # Even if a script slipped past validation, no Ansible process run by the engine runs it.
    marker = tmp_path / "script-ran"
    _plant_inventory_script(folder, marker)
    done = _ansible_inventory(folder, ansible_trust_environment(folder, ANSIBLE_CFG))
    assert not marker.exists(), done.stdout
    assert "evil" not in done.stdout


def test_executable_variable_file_is_refused(cli, folder: Path) -> None:
    script = folder / "host_vars" / "atelier-web1"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho evil\n")
    script.chmod(0o700)
    _assert_refused(cli("validate", CLIENT), f"{script}:1", "an executable file is refused")


def test_linked_variable_file_is_refused(cli, folder: Path, inventories: Path) -> None:
    link = folder / "group_vars" / "web.yml"
    link.symlink_to(inventories / "alpenhof" / "group_vars" / "all" / "main.yml")
    _assert_refused(cli("validate", CLIENT), f"{link}:1", "a symbolic link is refused")


# --- (b) client variables: no templating, no trust settings --------------------


def test_pipe_lookup_is_refused_at_validate_enroll_and_run(
    cli, folder: Path, tmp_path: Path, no_ledger: Callable[[], bool]
) -> None:
    marker = tmp_path / "lookup-ran"
    vars_file = folder / "group_vars" / "all" / "main.yml"
    vars_file.write_text(
        vars_file.read_text()
        + f"ansible_host: \"{{{{ lookup('pipe', 'touch {marker}') }}}}\"\n"
        + f"app_motd: \"{{{{ query('ansible.builtin.pipe', 'touch {marker}') }}}}\"\n"
    )
    lines = vars_file.read_text().splitlines()
    host_line = next(n for n, line in enumerate(lines, 1) if line.startswith("ansible_host"))
    for command in (
        ("validate", CLIENT),
        ("enroll", CLIENT, "--accept", "SHA256:x"),
        ("run", CLIENT, "check", "--reason", "attack"),
        ("compliance", CLIENT),
    ):
        done = cli(*command)
        _assert_refused(
            done,
            f"{vars_file}:{host_line}: ansible_host: Jinja templating is refused",
            f"{vars_file}:{host_line + 1}: app_motd: Jinja templating is refused",
        )
        assert "touch" not in done.err  # values are never echoed
    assert not marker.exists()
    assert no_ledger()


def test_in_process_reading_never_templates(folder: Path, tmp_path: Path) -> None:
    # What preflight, enrolment and drills read: raw values, even if validation were skipped.
    marker = tmp_path / "lookup-ran"
    (folder / "host_vars").mkdir()
    (folder / "host_vars" / "atelier-web1.yml").write_text(
        f"ansible_user: \"{{{{ lookup('pipe', 'touch {marker}') }}}}\"\n"
    )
    connections = read_inventory_variables(folder).connections
    assert not marker.exists()
    assert "lookup" in connections["atelier-web1"].user


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ansible_ssh_common_args", "-o StrictHostKeyChecking=no"),
        ("ansible_ssh_extra_args", "-o UserKnownHostsFile=/dev/null"),
        ("ansible_ssh_args", "-o ControlMaster=auto"),
        ("ansible_host_key_checking", "false"),
        ("ansible_ssh_host_key_checking", "false"),
        ("ansible_ssh_executable", "/tmp/evil"),
        ("ansible_ssh_private_key_file", "/srv/inventories/other/ssh/id_ed25519"),
        ("ansible_ssh_pkcs11_provider", "/tmp/evil.so"),
        ("ansible_control_path_dir", "/tmp"),
        ("ansible_paramiko_host_key_auto_add", "true"),
        ("ansible_connection", "local"),
        ("ansible_python_interpreter", "/usr/bin/python3; touch /tmp/x"),
        ("ansible_shell_executable", "/tmp/evil"),
        ("inventory_dir", "/srv/inventories/other"),
        ("backup_controller_known_hosts", "/srv/inventories/other/known_hosts"),
        # The shared backup target is the agency's: a client's variables may not choose
        # which host key is pinned for it, nor where its own repository is.
        ("backup_target_known_hosts", "/srv/inventories/other/known_hosts"),
        ("backup_target_path", "/srv/restic/alpenhof"),
        ("mitogen_via", "alpenhof-web1"),
        ("mitogen_ssh_debug_level", "3"),
        ("ansible_mitogen_connection", "ssh"),
        ("backup_target_host", "198.18.0.99"),
        ("backup_client", "alpenhof"),
        ("backup_repository", "sftp:restic-alpenhof@198.18.0.5:/srv/restic/alpenhof"),
    ],
)
def test_trust_variables_are_refused_in_the_hosts_file(
    cli, folder: Path, name: str, value: str
) -> None:
    hosts = folder / "hosts.yml"
    text = hosts.read_text()
    marker_line = "          ansible_host: 198.18.0.41\n"
    assert marker_line in text
    hosts.write_text(text.replace(marker_line, f"{marker_line}          {name}: {value!r}\n"))
    line = hosts.read_text().splitlines().index(f"          {name}: {value!r}") + 1
    _assert_refused(cli("validate", CLIENT), f"{hosts}:{line}: {name}: refused")


def test_proxy_command_is_refused_in_any_variable(cli, folder: Path) -> None:
    ini = folder / "hosts.ini"
    (folder / "hosts.yml").unlink()
    ini.write_text(
        "[web]\natelier-web1 ansible_host=198.18.0.41 "
        "notes='-o ProxyCommand=sh -c \"touch /tmp/x\"'\n"
    )
    _assert_refused(cli("validate", CLIENT), f"{ini}:2: notes: an OpenSSH option")


def test_permitted_variables_pass(cli, folder: Path) -> None:
    vars_file = folder / "group_vars" / "all" / "main.yml"
    vars_file.write_text(
        vars_file.read_text()
        + "ansible_connection: ssh\nansible_python_interpreter: /usr/bin/python3\n"
        + "ansible_port: 22\napp_settings: {motd: 'Welcome', ports: [80, 443]}\n"
    )
    done = cli("validate", CLIENT)
    assert done.code == ExitCode.OK, done


def _write_vault(folder: Path, password_file: Path, values: dict[str, str]) -> None:
    from ansible.parsing.vault import VaultLib, VaultSecret

    password_file.write_bytes(VAULT_PASSWORD)
    password_file.chmod(0o600)
    vault = VaultLib([("default", VaultSecret(VAULT_PASSWORD.strip()))])
    text = "".join(f"{name}: {value}\n" for name, value in values.items())
    (folder / "group_vars" / "all" / "vault.yml").write_bytes(vault.encrypt(text.encode()))


def test_templated_vault_value_is_refused_without_showing_it(
    cli, folder: Path, tmp_path: Path, no_ledger: Callable[[], bool]
) -> None:
    marker = tmp_path / "vault-lookup-ran"
    password_file = tmp_path / "vault-password"
    canary = "canary-4f1d-secret"
    _write_vault(
        folder,
        password_file,
        {
            "webmg_db_password": canary,
            "webmg_api_token": f"\"{{{{ lookup('pipe', 'touch {marker}') }}}}\"",
        },
    )
    for command in (
        ("enroll", CLIENT, "--accept", "SHA256:x", "--vault-password-file", str(password_file)),
        ("run", CLIENT, "check", "--reason", "attack", "--vault-password-file", str(password_file)),
    ):
        result = cli(*command)
        _assert_refused(result, "webmg_api_token (vault-encrypted)", "Jinja templating is refused")
        assert canary not in result.err + result.out
        assert "touch" not in result.err
    assert not marker.exists()
    assert no_ledger()


def test_inline_vault_interpreter_is_checked_once_decrypted(
    cli, folder: Path, tmp_path: Path
) -> None:
    from ansible.parsing.vault import VaultLib, VaultSecret

    password_file = tmp_path / "vault-password"
    password_file.write_bytes(VAULT_PASSWORD)
    password_file.chmod(0o600)
    vault = VaultLib([("default", VaultSecret(VAULT_PASSWORD.strip()))])
    encrypted = vault.encrypt(b"/tmp/evil-python").decode()
    indented = "\n".join(f"  {line}" for line in encrypted.splitlines())
    (folder / "host_vars").mkdir()
    (folder / "host_vars" / "atelier-web1.yml").write_text(
        f"ansible_python_interpreter: !vault |\n{indented}\n"
    )
    assert cli("validate", CLIENT).code == ExitCode.OK  # nothing to read without the password
    done = cli(
        "run", CLIENT, "check", "--reason", "attack", "--vault-password-file", str(password_file)
    )
    _assert_refused(done, "ansible_python_interpreter (vault-encrypted)", "an interpreter must be")
    assert "evil" not in done.err


def test_plain_vault_values_pass(folder: Path, tmp_path: Path) -> None:
    password_file = tmp_path / "vault-password"
    _write_vault(folder, password_file, {"webmg_db_password": "pl41n-{-secret"})
    inventory = read_inventory_variables(folder, Vault(None, password=VAULT_PASSWORD.strip()))
    assert "atelier-web1" in inventory.connections


def test_refused_vault_value_raises_bad_input(folder: Path, tmp_path: Path) -> None:
    _write_vault(folder, tmp_path / "pw", {"ansible_ssh_common_args": "-o Port=22"})
    with pytest.raises(BadInput, match="ansible_ssh_common_args \\(vault-encrypted\\)"):
        read_inventory_variables(folder, Vault(None, password=VAULT_PASSWORD.strip()))


# --- (c) a client's ansible.cfg tunes speed, not trust -------------------------


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("[defaults]\nhost_key_checking = False\n", "[defaults] host_key_checking is refused"),
        (
            "[ssh_connection]\nssh_args = -o StrictHostKeyChecking=no\n",
            "[ssh_connection] ssh_args is refused",
        ),
        ("[defaults]\ninventory_plugins = /tmp/plugins\n", "[defaults] inventory_plugins"),
        ("[defaults]\nvault_password_file = /tmp/evil.sh\n", "[defaults] vault_password_file"),
        ("[DEFAULT]\nhost_key_checking = False\n", "[DEFAULT] host_key_checking is refused"),
        ("[defaults]\nforks = 5\n  host_key_checking = False\n", "a continued value is refused"),
        ("[defaults]\nforks = many\n", "[defaults] forks must be a whole number"),
        ("[defaults]\nstrategy = free\n", "[defaults] strategy must be one of linear"),
        (
            "[defaults]\nstrategy_plugins = /tmp/plugins\n",
            "[defaults] strategy_plugins is refused",
        ),
    ],
)
def test_client_ansible_cfg_beyond_speed_is_refused(
    cli, folder: Path, line: str, why: str, no_ledger: Callable[[], bool]
) -> None:
    cfg = folder / "ansible.cfg"
    cfg.write_text("# client tuning\n" + line)
    for command in (("validate", CLIENT), ("run", CLIENT, "check", "--reason", "attack")):
        _assert_refused(cli(*command), f"{cfg}:", why)
    assert no_ledger()


def test_client_ansible_cfg_for_speed_is_accepted(cli, folder: Path) -> None:
    (folder / "ansible.cfg").write_text(
        "[defaults]\nforks = 5\ntimeout = 30 ; slow links\ngathering = smart\n"
        "[ssh_connection]\npipelining = True\n"
    )
    done = cli("validate", CLIENT)
    assert done.code == ExitCode.OK, done


def _resolved_config(folder: Path, cfg: Path) -> str:
    """Return what Ansible itself resolves for the ssh connection with the engine's environment."""
    done = subprocess.run(
        [str(TOOLS / "ansible-config"), "dump", "-t", "connection", "ssh"],
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(cfg),
            **ansible_trust_environment(folder, ANSIBLE_CFG),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_engine_trust_settings_beat_a_client_ansible_cfg(folder: Path, tmp_path: Path) -> None:
    # An unchecked file (as a client could change it after validation) still loses to the
    # engine's environment, as Ansible resolves its settings.
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text(
        "[defaults]\nhost_key_checking = False\n"
        "[ssh_connection]\nssh_args = -o StrictHostKeyChecking=no\n"
        "ssh_common_args = -o ProxyCommand=evil\n"
    )
    resolved = _resolved_config(folder, cfg)
    lines = {line.split("(", 1)[0].strip(): line for line in resolved.splitlines() if "=" in line}
    known_hosts = folder / "known_hosts"
    assert "env: ANSIBLE_HOST_KEY_CHECKING" in lines["host_key_checking"]
    assert "= True" in lines["host_key_checking"]
    ssh_args = lines["ssh_args"]
    assert "StrictHostKeyChecking=no" not in ssh_args
    for option in (
        "IdentitiesOnly=yes",
        "StrictHostKeyChecking=yes",
        f"UserKnownHostsFile={known_hosts}",
        "ControlPersist=120s",
    ):
        assert option in ssh_args, ssh_args
    assert "ProxyCommand" not in lines["ssh_common_args"]


# --- IdentitiesOnly everywhere ssh is built ------------------------------------


def test_identities_only_in_every_ssh_command(folder: Path, tmp_path: Path) -> None:
    assert "-o IdentitiesOnly=yes" in project_ssh_args(ANSIBLE_CFG)
    environment = ansible_trust_environment(folder, ANSIBLE_CFG)
    for name in ("ANSIBLE_SSH_ARGS", "ANSIBLE_SSH_COMMON_ARGS"):
        options = shlex.split(environment[name])
        assert "IdentitiesOnly=yes" in options, name
    argv = openssh_argv(tmp_path / "key", tmp_path / "known_hosts", "webmg@198.18.0.41")
    pairs = list(itertools.pairwise(argv))
    assert ("-o", "IdentitiesOnly=yes") in pairs
    assert ("-o", "StrictHostKeyChecking=yes") in pairs


def test_runner_puts_the_trust_settings_last(folder: Path, tmp_path: Path) -> None:
    # Whatever else a job's environment says, the runner's last word is the engine's trust.
    from webmg_ops.ansible.runner import Job, _environment

    job = Job(
        run_id="trust",
        playbook=tmp_path / "play.yml",
        inventory=folder / "hosts.yml",
        private_dir=tmp_path / "private",
        environment={
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_SSH_ARGS": "-o StrictHostKeyChecking=no",
            "ANSIBLE_SSH_COMMON_ARGS": "-o ProxyCommand=evil",
            "ANSIBLE_INVENTORY_ENABLED": "script",
        },
    )
    environment = _environment(job, tmp_path / "control")
    assert environment["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert environment["ANSIBLE_INVENTORY_ENABLED"] == "yaml,ini"
    ssh_args = shlex.split(environment["ANSIBLE_SSH_ARGS"])
    assert "StrictHostKeyChecking=no" not in ssh_args
    for option in (
        "IdentitiesOnly=yes",
        "StrictHostKeyChecking=yes",
        f"UserKnownHostsFile={folder.absolute() / 'known_hosts'}",
        f"GlobalKnownHostsFile={folder.absolute() / 'known_hosts'}",
    ):
        assert option in ssh_args
    assert "ProxyCommand" not in environment["ANSIBLE_SSH_COMMON_ARGS"]
