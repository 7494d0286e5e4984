"""The deeper baseline's checks, each fed what a real Debian host answers: a host as the
role leaves it passes, the same host with the setting undone fails, and a control the
host cannot honour (a container) is a residual risk that says why.

The lab tests (``test_hardening_lab.py``) run the same checks on real hosts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from webmg_ops.hardening.compliance import CHECKS, evaluate_host
from webmg_ops.hardening.controls import CONTROLS, ControlStatus, find_control

ROLE = Path(__file__).resolve().parents[2] / "roles" / "hardening"

#: What a hardened, real (not container) host answers, command prefix -> (status, output).
HARDENED: dict[str, tuple[int, str]] = {
    "true": (0, ""),
    "systemd-detect-virt --container": (1, "none\n"),
    ". /etc/os-release": (0, "debian\n"),
    "cat /etc/issue.net": (0, "Authorised access only.\n"),
    "cat /etc/issue": (0, "Authorised access only.\n"),
    "cat /etc/login.defs": (0, "ENCRYPT_METHOD SHA512\nSHA_CRYPT_MIN_ROUNDS 640000\n"),
    "cat /etc/pam.d/common-password": (0, "password requisite pam_pwquality.so retry=3\n"),
    "cat /etc/security/pwquality.conf": (0, "# defaults\nminlen = 14\nminclass = 4\n"),
    "cat /etc/pam.d/common-session": (0, "session optional pam_tmpdir.so\n"),
    "dpkg-query -W -f '${Status}'": (0, "install ok installed"),
    "getent passwd": (
        0,
        "root:x:0:0:root:/root:/bin/bash\n"
        "sync:x:4:65534:sync:/bin:/bin/sync\n"
        "postgres:x:106:112::/var/lib/postgresql:/usr/sbin/nologin\n"
        "webmg:x:1000:1000::/home/webmg:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    ),
    "stat -c '%a %U %G' /home/webmg": (0, "750 webmg webmg\n"),
    "stat -c '%a %U %G' /etc/cron.allow": (0, "640 root root\n"),
    "stat -c '%a %U %G' /etc/cron.deny": (1, ""),
    "stat -c '%a %U %G' /usr/bin/at": (1, ""),
    "stat -c '%a %U %G' /var/lib/aide/aide.db": (0, "600 root root\n"),
    "cat /etc/security/limits.conf": (0, "*    hard    core    0\n"),
    "cat /etc/systemd/coredump.conf": (0, "[Coredump]\nStorage=none\nProcessSizeMax=0\n"),
    "cat /etc/modprobe.d/*.conf": (
        0,
        "".join(
            f"install {name} /bin/false\nblacklist {name}\n"
            for name in (
                "dccp",
                "sctp",
                "rds",
                "tipc",
                "cramfs",
                "freevxfs",
                "hfs",
                "hfsplus",
                "jffs2",
                "udf",
                "usb_storage",
                "firewire_core",
            )
        ),
    ),
    "cat /proc/modules": (0, "nf_tables 1 0 - Live 0x0\n"),
    "fail2ban-client status sshd": (0, "Status for the jail: sshd\n"),
    "systemctl is-enabled acct": (0, "enabled\n"),
    "systemctl is-active acct": (0, "active\n"),
    "cat /etc/default/sysstat": (0, 'ENABLED="true"\n'),
    "cat /etc/default/debsums": (0, "CRON_CHECK=weekly\n"),
    "cat /etc/default/rkhunter": (0, 'CRON_DAILY_RUN="true"\n'),
    "systemctl is-active -q auditd": (0, ""),
    "auditctl -l": (
        0,
        "".join(
            f"-w /etc/x -p wa -k {key}\n"
            for key in (
                "scope",
                "time-change",
                "access",
                "identity",
                "perm_mod",
                "mounts",
                "session",
                "logins",
                "delete",
                "MAC-policy",
                "kernel_modules",
            )
        ),
    ),
    "systemctl is-enabled dailyaidecheck.timer": (0, "enabled\n"),
    "systemd-analyze security --no-pager 'webmg-demo-app.service'": (
        0,
        "→ Overall exposure level for webmg-demo-app.service: 2.4 OK :-)\n",
    ),
}

APP = {"hardening_app_units": ["webmg-demo-app.service"]}


def _verdict(
    control_id: str,
    changes: Mapping[str, tuple[int, str]] | None = None,
    level: str = "institutional-sla",
    settings: Mapping[str, Any] = APP,
) -> tuple[ControlStatus, str]:
    answers = {**HARDENED, **(changes or {})}

    def probe(command: str) -> tuple[int, str]:
        # The longest matching prefix answers: "cat /etc/issue.net" before "cat /etc/issue".
        matches = [prefix for prefix in answers if command.startswith(prefix)]
        if not matches:
            return 1, ""
        return answers[max(matches, key=len)]

    host = evaluate_host("h", probe, level, [find_control(control_id)], settings)
    assert host.error is None, host.error
    (result,) = host.results
    return result.status, result.detail


NEW_CONTROLS = [
    "SSH-25", "ACC-05", "ACC-06", "ACC-07", "ACC-08", "ACC-09", "ACC-10", "ACC-11", "ACC-12",
    "KRN-07", "MOD-01", "MOD-02", "MOD-03", "DET-01", "DET-02", "DET-03", "DET-04", "DET-05",
    "DET-06", "DET-07", "DET-08", "DET-09", "APP-01",
]  # fmt: skip


@pytest.mark.parametrize("control_id", NEW_CONTROLS)
def test_a_host_as_the_role_leaves_it_passes(control_id: str) -> None:
    status, detail = _verdict(control_id)
    expected = ControlStatus.NOT_APPLICABLE if control_id == "ACC-12" else ControlStatus.PASS
    assert status is expected, detail


@pytest.mark.parametrize(
    ("control_id", "undone", "words"),
    [
        ("SSH-25", {"cat /etc/issue": (0, "Debian GNU/Linux 12 \\n \\l\n")}, "names the system"),
        ("ACC-05", {"cat /etc/login.defs": (0, "ENCRYPT_METHOD MD5\n")}, "MD5"),
        ("ACC-06", {"cat /etc/login.defs": (0, "SHA_CRYPT_MIN_ROUNDS 1000\n")}, "1000"),
        ("ACC-07", {"cat /etc/security/pwquality.conf": (0, "minlen = 8\nminclass = 4\n")},
         "minlen 8"),
        ("ACC-07", {"cat /etc/pam.d/common-password": (0, "password pam_unix.so\n")},
         "not in common-password"),
        ("ACC-08", {"cat /etc/pam.d/common-session": (0, "# pam_tmpdir.so\n")}, "not in"),
        ("ACC-09", {"getent passwd": (0, "postgres:x:106:112::/var/lib/postgresql:/bin/bash\n")},
         "postgres (/bin/bash)"),
        ("ACC-10", {"stat -c '%a %U %G' /home/webmg": (0, "755 webmg webmg\n")},
         "/home/webmg 755"),
        ("ACC-11", {"stat -c '%a %U %G' /etc/cron.deny": (0, "644 root root\n")},
         "/etc/cron.deny exists"),
        ("ACC-11", {"stat -c '%a %U %G' /etc/cron.allow": (1, "")}, "no /etc/cron.allow"),
        ("KRN-07", {"cat /etc/security/limits.conf": (0, "*    soft    core    0\n")},
         "hard core 0"),
        ("KRN-07", {"cat /etc/systemd/coredump.conf": (0, "[Coredump]\n#Storage=external\n")},
         "systemd-coredump still stores"),
        ("MOD-01", {"cat /etc/modprobe.d/*.conf": (0, "blacklist dccp\n")}, "dccp"),
        ("MOD-03", {"cat /proc/modules": (0, "usb_storage 1 0 - Live 0x0\n")},
         "loaded: usb_storage"),
        ("DET-01", {"fail2ban-client status sshd": (255, "ERROR Failed to access socket\n")},
         "not running"),
        ("DET-02", {"systemctl is-active acct": (3, "inactive\n")}, "inactive"),
        ("DET-03", {"cat /etc/default/sysstat": (0, 'ENABLED="false"\n')}, "ENABLED=false"),
        ("DET-04", {"auditctl -l": (0, "-w /etc/passwd -p wa -k identity\n")}, "scope"),
        ("DET-05", {"stat -c '%a %U %G' /var/lib/aide/aide.db": (1, "")}, "never initialised"),
        ("DET-07", {"dpkg-query -W -f '${Status}'": (1, "")}, "not installed"),
        ("APP-01", {"systemd-analyze security --no-pager 'webmg-demo-app.service'": (
            0, "→ Overall exposure level for webmg-demo-app.service: 9.2 UNSAFE :-{\n")},
         "9.2 > 5.0"),
    ],
)  # fmt: skip
def test_a_host_with_the_setting_undone_fails_naming_it(
    control_id: str, undone: Mapping[str, tuple[int, str]], words: str
) -> None:
    status, detail = _verdict(control_id, undone)
    assert status is ControlStatus.FAIL, detail
    assert words in detail


CONTAINER = {"systemd-detect-virt --container": (0, "systemd-nspawn\n")}


def test_in_a_container_auditd_is_a_residual_risk_never_a_pass() -> None:
    status, detail = _verdict("DET-04", {**CONTAINER, "auditctl -l": (1, "")})
    assert status is ControlStatus.RESIDUAL_RISK
    assert detail.startswith("not applicable here:") and "systemd-nspawn" in detail


def test_a_module_loaded_in_the_kernel_a_container_shares_is_a_residual_risk() -> None:
    loaded = {"cat /proc/modules": (0, "sctp 1 0 - Live 0x0\n")}
    assert _verdict("MOD-01", loaded)[0] is ControlStatus.FAIL
    status, detail = _verdict("MOD-01", {**loaded, **CONTAINER})
    assert status is ControlStatus.RESIDUAL_RISK and "sctp" in detail


def test_process_accounting_a_container_cannot_run_is_a_residual_risk() -> None:
    stopped = {"systemctl is-active acct": (3, "failed\n"), **CONTAINER}
    status, detail = _verdict("DET-02", stopped)
    assert status is ControlStatus.RESIDUAL_RISK and "cannot run" in detail
    not_enabled = {**stopped, "systemctl is-enabled acct": (1, "disabled\n")}
    assert _verdict("DET-02", not_enabled)[0] is ControlStatus.FAIL


def test_the_rootkit_scanner_starts_at_institutional_sla() -> None:
    assert _verdict("DET-09", level="continuous-evolution") == (
        ControlStatus.NOT_APPLICABLE,
        "starts at institutional-sla",
    )
    assert _verdict("DET-09", level="institutional-sla")[0] is ControlStatus.PASS


def test_a_control_switched_off_in_the_inventory_is_a_residual_risk_naming_the_switch() -> None:
    status, detail = _verdict("DET-01", settings={**APP, "hardening_fail2ban_enabled": False})
    assert status is ControlStatus.RESIDUAL_RISK
    assert "hardening_fail2ban_enabled: false" in detail
    # An area's own switch counts for its controls.
    status, _ = _verdict("ACC-07", settings={**APP, "hardening_accounts_enabled": "false"})
    assert status is ControlStatus.RESIDUAL_RISK


def test_a_host_without_application_units_has_nothing_to_sandbox() -> None:
    assert _verdict("APP-01", settings={})[0] is ControlStatus.NOT_APPLICABLE


def test_every_control_names_references_a_check_and_a_switch_the_role_defines() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    for control in CONTROLS:
        assert control.references, control.id
        assert control.kind in CHECKS, control.id
        assert control.switch_variable in defaults, (control.id, control.switch_variable)


def test_the_role_blocks_every_module_the_checks_require() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    required = {
        name
        for control in CONTROLS
        if control.kind == "modules_disabled"
        for name in control.params["modules"]
    }
    assert required <= set(defaults["hardening_blocked_modules"])


def test_the_roles_ssh_drop_in_sets_what_each_ssh_check_requires() -> None:
    """The drop-in the role renders with its defaults holds, for each SSH check with a
    required value, that value (sshd -T on a lab host then shows it: the lab tests)."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(
        (ROLE / "templates" / "sshd_hardening.conf.j2").read_text()
    )
    rendered = template.render(**defaults, ansible_managed="managed")
    settings = {
        line.split()[0].lower(): line.split(None, 1)[1]
        for line in rendered.splitlines()
        if line.strip() and not line.startswith("#")
    }
    for control in CONTROLS:
        if control.kind != "sshd":
            continue
        option, params = control.params["option"], control.params
        assert option in settings, control.id
        if "equals" in params:
            assert settings[option] == params["equals"], control.id
        elif "at_most" in params:
            assert int(settings[option]) <= params["at_most"], control.id
