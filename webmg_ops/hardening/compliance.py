"""Compliance checks: every control of :mod:`webmg_ops.hardening.controls` on every host.

Independent of the hardening role: the checks read the hosts through
pytest-testinfra's Ansible backend (the client's inventory, our ansible.cfg,
its strict known_hosts) and judge each control as pass, fail,
not-applicable or residual-risk (e.g. a setting a container's read-only
/proc/sys cannot take). The score is passed / applicable, where residual
risks count as applicable and not passed.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from webmg_ops.ansible.connection import ansible_trust_environment
from webmg_ops.ansible.inventory import find_inventory_file
from webmg_ops.ansible.runner import ANSIBLE_CFG
from webmg_ops.ansible.vault import VAULT_PASSWORD_VARIABLE
from webmg_ops.config.clients import Client
from webmg_ops.errors import EnvironmentProblem
from webmg_ops.hardening.controls import CONTROLS, Control, ControlStatus, root_login_allowed


class Probe(Protocol):
    """Runs a command on one host (as root) and returns its exit status and output."""

    def __call__(self, command: str) -> tuple[int, str]: ...


@dataclass(frozen=True)
class ControlResult:
    """One control on one host."""

    control: str
    status: ControlStatus
    detail: str


@dataclass(frozen=True)
class HostCompliance:
    """Every control on one host, or why the host could not be checked."""

    host: str
    results: tuple[ControlResult, ...]
    error: str | None = None

    @property
    def passed(self) -> int:
        """Return the number of controls passed."""
        return sum(result.status is ControlStatus.PASS for result in self.results)

    @property
    def applicable(self) -> int:
        """Return the number of controls that apply (not-applicable excluded)."""
        return sum(result.status is not ControlStatus.NOT_APPLICABLE for result in self.results)

    def with_status(self, status: ControlStatus) -> list[str]:
        """Given a status, return the ids of the controls that have it."""
        return [result.control for result in self.results if result.status is status]


def score(hosts: Sequence[HostCompliance]) -> tuple[int, int]:
    """Given hosts' compliance, return (passed, applicable) over all of them."""
    return sum(host.passed for host in hosts), sum(host.applicable for host in hosts)


def percent(passed: int, applicable: int) -> float:
    """Given passed and applicable counts, return the score in percent (100 if none apply)."""
    return round(passed * 100 / applicable, 1) if applicable else 100.0


def to_document(client: str, hosts: Sequence[HostCompliance]) -> dict[str, Any]:
    """Given a client and its hosts' compliance, return the JSON-ready report."""
    passed, applicable = score(hosts)
    return {
        "client": client,
        "score": {
            "passed": passed,
            "applicable": applicable,
            "percent": percent(passed, applicable),
        },
        "hosts": {
            host.host: {
                "error": host.error,
                "score": {
                    "passed": host.passed,
                    "applicable": host.applicable,
                    "percent": percent(host.passed, host.applicable),
                },
                "failed": host.with_status(ControlStatus.FAIL),
                "residual_risk": host.with_status(ControlStatus.RESIDUAL_RISK),
                "controls": {
                    result.control: {
                        "status": str(result.status),
                        "detail": result.detail,
                        "references": list(_REFERENCES.get(result.control, ())),
                    }
                    for result in host.results
                },
            }
            for host in hosts
        },
    }


#: Each control's reference ids (CIS, dev-sec), listed beside its status in the evidence.
_REFERENCES: Mapping[str, tuple[str, ...]] = {
    control.id: control.references for control in CONTROLS
}


# --- checks -------------------------------------------------------------

Verdict = tuple[ControlStatus, str]


class HostFacts:
    """What the checks read from one host, each command run once, with the host's
    inventory variables (``settings``: the role's switches and the application's units)."""

    def __init__(self, probe: Probe, level: str, settings: Mapping[str, Any] | None = None) -> None:
        self.probe = probe
        self.level = level
        self.settings: Mapping[str, Any] = settings or {}
        self._cache: dict[str, tuple[int, str]] = {}

    def run(self, command: str) -> tuple[int, str]:
        """Given a shell command, return its (cached) exit status and output."""
        if command not in self._cache:
            self._cache[command] = self.probe(command)
        return self._cache[command]

    def sshd(self) -> dict[str, str]:
        """Return the SSH server's effective settings (``sshd -T``), lower-case keys."""
        rc, out = self.run("/usr/sbin/sshd -T 2>/dev/null")
        settings: dict[str, str] = {}
        for line in out.splitlines() if rc == 0 else ():
            key, _, value = line.partition(" ")
            settings.setdefault(key.lower(), value.strip())
        return settings

    def sysctl(self) -> dict[str, Any]:
        """Return every catalogue sysctl: running value, writable, persisted value."""
        keys = sorted({key for c in CONTROLS if c.kind == "sysctl" for key in c.params["settings"]})
        _, out = self.run(f"/usr/bin/python3 -c {_quote(SYSCTL_PROBE)} {_quote(json.dumps(keys))}")
        try:
            data: dict[str, Any] = json.loads(out)
        except ValueError:
            return {}
        return data


SYSCTL_PROBE = """
import glob, json, os, sys
persisted = {}
for name in ["/etc/sysctl.conf"] + sorted(glob.glob("/etc/sysctl.d/*.conf")):
    try:
        lines = open(name).read().splitlines()
    except OSError:
        continue
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and not key.strip().startswith(("#", ";")):
            persisted[key.strip()] = value.strip()
found = {}
for key in json.loads(sys.argv[1]):
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        value = open(path).read().strip()
    except OSError:
        value = None
    found[key] = {"value": value, "writable": os.access(path, os.W_OK),
                  "persisted": persisted.get(key)}
print(json.dumps(found))
"""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def check_sshd(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and an SSH control, return its verdict from ``sshd -T``."""
    settings = facts.sshd()
    if not settings:
        return ControlStatus.FAIL, "sshd -T gave no configuration"
    params = control.params
    value = settings.get(params["option"], "")
    shown = f"{params['option']} {value or '(unset)'}"
    if "equals" in params:
        ok = value == params["equals"]
    elif "not_equals" in params:
        ok = bool(value) and value != params["not_equals"]
    elif "subset" in params:
        extra = sorted(set(value.split(",")) - set(params["subset"]))
        return (
            (ControlStatus.FAIL, f"weak: {', '.join(extra)}")
            if extra
            else (
                ControlStatus.PASS,
                shown,
            )
        )
    elif "at_most" in params:
        ok = value.isdigit() and int(value) <= params["at_most"]
    elif "between" in params:
        low, high = params["between"]
        ok = value.isdigit() and low <= int(value) <= high
    elif params.get("root_policy"):
        allowed = root_login_allowed(facts.level)
        ok = value in allowed
        shown += f" (policy of {facts.level}: {' or '.join(allowed)})"
    else:
        raise ValueError(f"{control.id}: no comparison")
    return (ControlStatus.PASS if ok else ControlStatus.FAIL), shown


def check_sysctl(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and a sysctl control, return its verdict.

    A wrong running value that /proc/sys does not let the host change, but
    that is persisted for the next boot, is a residual risk, not a failure.
    """
    state = facts.sysctl()
    wrong: list[str] = []
    read_only: list[str] = []
    missing: list[str] = []
    for key, expected in control.params["settings"].items():
        found = state.get(key) or {}
        if found.get("value") is None:
            missing.append(key)
        elif found["value"].split() != str(expected).split():
            persisted = str(found.get("persisted")) == str(expected)
            target = read_only if not found.get("writable") and persisted else wrong
            target.append(f"{key}={found['value']}")
    if wrong:
        return ControlStatus.FAIL, "; ".join(wrong)
    if read_only:
        return (
            ControlStatus.RESIDUAL_RISK,
            f"/proc/sys is read-only here: persisted, not applied ({'; '.join(read_only)})",
        )
    if missing and len(missing) == len(control.params["settings"]):
        return ControlStatus.NOT_APPLICABLE, f"not offered by this kernel: {', '.join(missing)}"
    return ControlStatus.PASS, "running values as required"


def _input_chain(facts: HostFacts) -> str:
    rc, out = facts.run("nft list ruleset 2>/dev/null")
    match = re.search(r"chain input \{(.*?)\n\t\}", out, re.S) if rc == 0 else None
    return match.group(1) if match else ""


def check_nft_policy_drop(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts, return whether the input chain drops by default."""
    chain = _input_chain(facts)
    if re.search(r"hook input .*policy drop", chain):
        return ControlStatus.PASS, "input policy drop"
    return ControlStatus.FAIL, "no input chain with policy drop" if not chain else "policy accept"


def check_nft_ssh_restricted(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts, return whether SSH is accepted only from given source networks."""
    chain = _input_chain(facts)
    if not re.search(r"hook input .*policy drop", chain):
        return ControlStatus.FAIL, "inbound traffic is not dropped by default"
    ssh = [line.strip() for line in chain.splitlines() if re.search(r"dport (22|ssh)\b", line)]
    if any("saddr" not in line for line in ssh):
        return ControlStatus.FAIL, "SSH accepted from anywhere"
    return (ControlStatus.PASS, "; ".join(ssh)) if ssh else (ControlStatus.FAIL, "no SSH rule")


def check_service_enabled(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and a control naming a service, return whether it is enabled."""
    _, out = facts.run(f"systemctl is-enabled {control.params['name']} 2>/dev/null")
    state = out.strip() or "unknown"
    return (ControlStatus.PASS if state == "enabled" else ControlStatus.FAIL), state


def _apt_config(facts: HostFacts) -> list[str]:
    _, out = facts.run("apt-config dump")
    return out.splitlines()


def check_apt_periodic(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts, return whether unattended-upgrades runs daily."""
    rc, _ = facts.run("dpkg-query -W -f '${Status}' unattended-upgrades | grep -q 'ok installed'")
    if rc != 0:
        return ControlStatus.FAIL, "unattended-upgrades not installed"
    lines = _apt_config(facts)
    if 'APT::Periodic::Unattended-Upgrade "1";' in lines:
        return ControlStatus.PASS, "APT::Periodic::Unattended-Upgrade 1"
    return ControlStatus.FAIL, "APT::Periodic::Unattended-Upgrade not enabled"


def check_apt_security_only(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts, return whether automatic upgrades take the security origin only."""
    lines = _apt_config(facts)
    patterns = [
        line.split(" ", 1)[1].strip('";')
        for line in lines
        if line.startswith(
            ("Unattended-Upgrade::Origins-Pattern:: ", "Unattended-Upgrade::Allowed-Origins:: ")
        )
    ]
    if not patterns:
        return ControlStatus.FAIL, "no origin configured"
    other = [pattern for pattern in patterns if "security" not in pattern.lower()]
    if other:
        return ControlStatus.FAIL, f"also from: {'; '.join(other)}"
    return ControlStatus.PASS, "; ".join(patterns)


def _login_defs(facts: HostFacts) -> dict[str, str]:
    _, out = facts.run("cat /etc/login.defs")
    values = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#"):
            values[parts[0]] = parts[1]
    return values


def check_login_defs(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and a login.defs control, return its verdict."""
    key, op, wanted = control.params["key"], control.params["op"], control.params["value"]
    value = _login_defs(facts).get(key, "")
    if not value.lstrip("-").isdigit():
        return ControlStatus.FAIL, f"{key} not set"
    number = int(value)
    ok = number <= wanted if op == "<=" else number >= wanted
    return (ControlStatus.PASS if ok else ControlStatus.FAIL), f"{key} {value}"


def check_login_defs_umask(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts, return whether login.defs sets the required umask (or stricter)."""
    value = _login_defs(facts).get("UMASK", "")
    try:
        ok = int(value, 8) & 0o027 == 0o027
    except ValueError:
        ok = False
    return (ControlStatus.PASS if ok else ControlStatus.FAIL), f"UMASK {value or '(unset)'}"


def check_packages_absent(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and a list of packages, return whether none is installed."""
    names = " ".join(control.params["names"])
    _, out = facts.run(f"dpkg-query -W -f '${{Package}} ${{Status}}\\n' {names} 2>/dev/null")
    installed = [line.split()[0] for line in out.splitlines() if line.endswith("ok installed")]
    if installed:
        return ControlStatus.FAIL, f"installed: {', '.join(installed)}"
    return ControlStatus.PASS, "none installed"


def _stat(facts: HostFacts, path: str) -> tuple[int, str, str] | None:
    rc, out = facts.run(f"stat -c '%a %U %G' {path}")
    if rc != 0:
        return None
    mode, user, group = out.split()
    return int(mode, 8), user, group


def _mode_problem(
    facts: HostFacts, path: str, max_mode: int, group: str | None, owner: str | None = "root"
) -> str | None:
    found = _stat(facts, path)
    if found is None:
        return None
    mode, user, owner_group = found
    wrong_owner = owner is not None and user != owner
    if mode & ~max_mode or wrong_owner or (group and owner_group not in (group, "root")):
        return f"{path} {mode:o} {user}:{owner_group}"
    return None


def check_file_mode(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and a file control, return whether owner and mode are as strict."""
    params = control.params
    if _stat(facts, params["path"]) is None:
        return ControlStatus.NOT_APPLICABLE, f"{params['path']} does not exist"
    problem = _mode_problem(facts, params["path"], params["max_mode"], params.get("group"))
    return (ControlStatus.FAIL, problem) if problem else (ControlStatus.PASS, "as required")


def check_file_modes(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and several paths, return whether all are as strict."""
    problems = [
        problem
        for path in control.params["paths"]
        if (problem := _mode_problem(facts, path, control.params["max_mode"], None))
    ]
    return (
        (ControlStatus.FAIL, "; ".join(problems))
        if problems
        else (ControlStatus.PASS, "as required")
    )


def check_sudo_default(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and a sudo setting (``logfile=``, ``use_pty``), return whether a
    ``Defaults`` line of sudo's configuration sets it."""
    setting = control.params["setting"]
    pattern = _quote(f"^\\s*Defaults.*\\b{re.escape(setting)}")
    rc, _ = facts.run(f"grep -rqsE {pattern} /etc/sudoers /etc/sudoers.d")
    return (
        (ControlStatus.PASS, f"{setting} set") if rc == 0 else (ControlStatus.FAIL, f"no {setting}")
    )


def check_time_sync(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts, return whether a time service keeps the clock right.

    A host whose repositories serve no time service is a residual risk.
    """
    _, synced = facts.run("timedatectl show -p NTPSynchronized --value 2>/dev/null")
    rc, _ = facts.run("systemctl is-active -q systemd-timesyncd chrony ntp ntpsec 2>/dev/null")
    if rc == 0:
        return ControlStatus.PASS, "a time service is active"
    package = control.params["package"]
    _, policy = facts.run(f"apt-cache policy {package}")
    if "Candidate:" not in policy or "Candidate: (none)" in policy:
        clock = "clock synchronised by its host" if synced.strip() == "yes" else "clock not synced"
        return ControlStatus.RESIDUAL_RISK, f"{package} is not served by the repositories; {clock}"
    _, virt = facts.run("systemd-detect-virt --container 2>/dev/null")
    if virt.strip() not in ("", "none"):
        return ControlStatus.RESIDUAL_RISK, f"container ({virt.strip()}): the clock is its host's"
    return ControlStatus.FAIL, "no time service active"


def _installed(facts: HostFacts, package: str) -> bool:
    rc, out = facts.run(f"dpkg-query -W -f '${{Status}}' {package} 2>/dev/null")
    return rc == 0 and out.strip().endswith("ok installed")


def _in_container(facts: HostFacts) -> str | None:
    """Return the container technology the host runs in (None for a machine of its own)."""
    rc, out = facts.run("systemd-detect-virt --container 2>/dev/null")
    kind = out.strip()
    return kind if rc == 0 and kind and kind != "none" else None


def _config_lines(facts: HostFacts, *paths: str) -> list[str]:
    """Return the lines of the given files (globs allowed) that are not comments."""
    _, out = facts.run(f"cat {' '.join(paths)} 2>/dev/null")
    return [
        line.strip()
        for line in out.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def check_banner_files(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and the banner files, return whether each holds a warning that
    names no system (getty's \\m \\r \\s \\v escapes, the distribution's name)."""
    _, release = facts.run('. /etc/os-release 2>/dev/null && echo "$ID"')
    system = release.strip().lower()
    problems = []
    for path in control.params["paths"]:
        rc, text = facts.run(f"cat {path}")
        if rc != 0 or not text.strip():
            problems.append(f"{path} empty or missing")
        elif re.search(r"\\[mrsv]", text) or (system and system in text.lower()):
            problems.append(f"{path} names the system")
    return (ControlStatus.FAIL, "; ".join(problems)) if problems else (ControlStatus.PASS, "set")


def check_login_defs_choice(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and a login.defs key with its accepted values, return its verdict."""
    key = control.params["key"]
    value = _login_defs(facts).get(key, "")
    ok = value.upper() in control.params["values"]
    return (ControlStatus.PASS if ok else ControlStatus.FAIL), f"{key} {value or '(unset)'}"


def check_pwquality(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts, return whether pam_pwquality checks new passwords with the
    minimum length and character classes required."""
    if not any(
        "pam_pwquality.so" in line for line in _config_lines(facts, "/etc/pam.d/common-password")
    ):
        return ControlStatus.FAIL, "pam_pwquality is not in common-password"
    settings: dict[str, str] = {}
    for line in _config_lines(
        facts, "/etc/security/pwquality.conf", "/etc/security/pwquality.conf.d/*.conf"
    ):
        key, sep, value = line.partition("=")
        if sep:
            settings[key.strip()] = value.strip()
    short = [
        f"{name} {settings.get(name, '(unset)')}"
        for name in ("minlen", "minclass")
        if not settings.get(name, "").isdigit() or int(settings[name]) < control.params[name]
    ]
    shown = ", ".join(f"{name} {settings.get(name, '(unset)')}" for name in ("minlen", "minclass"))
    return (
        (ControlStatus.FAIL, f"too weak: {', '.join(short)}")
        if short
        else (ControlStatus.PASS, shown)
    )


def check_pam_module(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts, a package and the PAM module it adds, return whether the
    package is installed and the module is in the PAM file."""
    params = control.params
    if not _installed(facts, params["package"]):
        return ControlStatus.FAIL, f"{params['package']} not installed"
    if not any(params["module"] in line for line in _config_lines(facts, params["file"])):
        return ControlStatus.FAIL, f"{params['module']} not in {params['file']}"
    return ControlStatus.PASS, f"{params['module']} in {params['file']}"


_NO_LOGIN = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")


def _accounts(facts: HostFacts) -> list[tuple[str, int, str, str]]:
    """Return (name, uid, home, shell) of each account of the host."""
    _, out = facts.run("getent passwd")
    found = []
    for line in out.splitlines():
        fields = line.split(":")
        if len(fields) == 7 and fields[2].isdigit():
            found.append((fields[0], int(fields[2]), fields[5], fields[6]))
    return found


def check_system_accounts(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts, return whether every system account (uid under 1000, but the
    exempt ones) has no login shell."""
    shells = [
        f"{name} ({shell})"
        for name, uid, _home, shell in _accounts(facts)
        if uid < 1000 and name not in control.params["exempt"] and shell not in _NO_LOGIN
    ]
    if shells:
        return ControlStatus.FAIL, f"login shell: {', '.join(shells)}"
    return ControlStatus.PASS, "no system account has a login shell"


def check_home_modes(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts, return whether every person's home folder (uid 1000 to 59999)
    is closed to group and others as the control requires."""
    homes = [home for _name, uid, home, _shell in _accounts(facts) if 1000 <= uid < 60000]
    problems = [
        problem
        for home in homes
        if (problem := _mode_problem(facts, home, control.params["max_mode"], None, owner=None))
    ]
    if problems:
        return ControlStatus.FAIL, "; ".join(problems)
    return ControlStatus.PASS, f"{len(homes)} home folder(s) as required"


def check_allow_file(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and a scheduler's allow and deny files, return whether only the
    allow file decides (it exists, root's, not writable by others; no deny file)."""
    params = control.params
    needed = params.get("only_with")
    if needed and _stat(facts, needed) is None:
        return ControlStatus.NOT_APPLICABLE, f"{needed} is not installed"
    if _stat(facts, params["allow"]) is None:
        return ControlStatus.FAIL, f"no {params['allow']}"
    problem = _mode_problem(facts, params["allow"], params["max_mode"], None)
    if problem:
        return ControlStatus.FAIL, problem
    if _stat(facts, params["deny"]) is not None:
        return ControlStatus.FAIL, f"{params['deny']} exists"
    return ControlStatus.PASS, f"{params['allow']} only"


def check_core_dumps(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts, return whether core dumps are off: a hard limit of 0 for
    everyone, and systemd-coredump (where installed) storing nothing."""
    limits = _config_lines(facts, "/etc/security/limits.conf", "/etc/security/limits.d/*.conf")
    if not any(line.split()[:4] == ["*", "hard", "core", "0"] for line in limits):
        return ControlStatus.FAIL, "no '* hard core 0' limit"
    if _installed(facts, "systemd-coredump"):
        settings = _config_lines(
            facts, "/etc/systemd/coredump.conf", "/etc/systemd/coredump.conf.d/*.conf"
        )
        if "Storage=none" not in settings:
            return ControlStatus.FAIL, "systemd-coredump still stores core dumps"
    return ControlStatus.PASS, "hard core 0"


def _module(name: str) -> str:
    # modprobe treats '-' and '_' in a module's name alike; /proc/modules writes '_'.
    return name.replace("-", "_")


def check_modules_disabled(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and kernel modules, return whether modprobe is told never to load
    them (an ``install`` to false and a ``blacklist``) and none is loaded.

    A module loaded in a container is its host's kernel's, which the container cannot
    unload: that is a residual risk, not the container's failure.
    """
    wanted = [_module(name) for name in control.params["modules"]]
    lines = [line.split() for line in _config_lines(facts, "/etc/modprobe.d/*.conf")]
    refused = {
        _module(words[1])
        for words in lines
        if len(words) >= 3
        and words[0] == "install"
        and words[2] in ("/bin/false", "/usr/bin/false", "/bin/true", "/usr/bin/true")
    }
    listed = {_module(words[1]) for words in lines if len(words) >= 2 and words[0] == "blacklist"}
    missing = [name for name in wanted if name not in refused or name not in listed]
    if missing:
        return ControlStatus.FAIL, f"loadable: {', '.join(missing)}"
    _, modules = facts.run("cat /proc/modules 2>/dev/null")
    loaded = sorted(
        {line.split()[0] for line in modules.splitlines() if line.split()} & set(wanted)
    )
    if loaded:
        container = _in_container(facts)
        if container:
            return (
                ControlStatus.RESIDUAL_RISK,
                f"not applicable here: loaded in the kernel this {container} container shares "
                f"({', '.join(loaded)}); configured never to load",
            )
        return ControlStatus.FAIL, f"loaded: {', '.join(loaded)}"
    return ControlStatus.PASS, "never loaded"


def check_fail2ban(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and a fail2ban jail, return whether the jail is running."""
    if not _installed(facts, "fail2ban"):
        return ControlStatus.FAIL, "fail2ban not installed"
    jail = control.params["jail"]
    rc, out = facts.run(f"fail2ban-client status {jail} 2>&1")
    if rc != 0:
        return ControlStatus.FAIL, f"jail {jail} not running: {out.strip()[:200]}"
    return ControlStatus.PASS, f"jail {jail} running"


def check_service_running(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts, a package and its service, return whether the service runs.

    In a container that does not let it run, the control is a residual risk with why.
    """
    params = control.params
    if not _installed(facts, params["package"]):
        return ControlStatus.FAIL, f"{params['package']} not installed"
    _, enabled = facts.run(f"systemctl is-enabled {params['unit']} 2>/dev/null")
    rc, state = facts.run(f"systemctl is-active {params['unit']} 2>/dev/null")
    if rc == 0 and enabled.strip() == "enabled":
        return ControlStatus.PASS, f"{params['unit']} enabled and active"
    container = _in_container(facts)
    if container and enabled.strip() == "enabled":
        return (
            ControlStatus.RESIDUAL_RISK,
            f"not applicable here: {params['unit']} cannot run in this {container} container "
            f"({state.strip() or 'inactive'})",
        )
    return (
        ControlStatus.FAIL,
        f"{params['unit']} {enabled.strip() or 'not enabled'}, {state.strip() or 'inactive'}",
    )


def check_default_file(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts, a package and a KEY=value of its /etc/default file, return
    whether the package is installed with the key set to an accepted value."""
    params = control.params
    if not _installed(facts, params["package"]):
        return ControlStatus.FAIL, f"{params['package']} not installed"
    values = {}
    for line in _config_lines(facts, params["path"]):
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("\"'")
    found = values.get(params["key"], "")
    ok = found.lower() in params["values"]
    return (
        ControlStatus.PASS if ok else ControlStatus.FAIL
    ), f"{params['key']}={found or '(unset)'}"


def check_packages_present(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and packages, return whether all are installed."""
    missing = [name for name in control.params["names"] if not _installed(facts, name)]
    if missing:
        return ControlStatus.FAIL, f"not installed: {', '.join(missing)}"
    return ControlStatus.PASS, "installed"


def check_auditd(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and the audit rule keys required, return whether auditd runs
    with a rule for each. A container shares its host's kernel audit: a residual risk."""
    container = _in_container(facts)
    if container:
        return (
            ControlStatus.RESIDUAL_RISK,
            f"not applicable here: a {container} container cannot run auditd (the kernel's "
            "audit belongs to its host)",
        )
    if not _installed(facts, "auditd"):
        return ControlStatus.FAIL, "auditd not installed"
    rc, _ = facts.run("systemctl is-active -q auditd")
    if rc != 0:
        return ControlStatus.FAIL, "auditd not running"
    _, rules = facts.run("auditctl -l 2>/dev/null")
    keys = {short or long for short, long in re.findall(r"-k (\S+)|key=(\S+)", rules)}
    missing = [key for key in control.params["keys"] if key not in keys]
    if missing:
        return ControlStatus.FAIL, f"no rule for: {', '.join(missing)}"
    return ControlStatus.PASS, f"{len(control.params['keys'])} rule groups loaded"


def check_aide(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts, return whether AIDE is installed, initialised, and checked by
    its daily timer."""
    if not _installed(facts, "aide"):
        return ControlStatus.FAIL, "aide not installed"
    if _stat(facts, "/var/lib/aide/aide.db") is None:
        return ControlStatus.FAIL, "no AIDE database: never initialised"
    _, enabled = facts.run("systemctl is-enabled dailyaidecheck.timer 2>/dev/null")
    if enabled.strip() != "enabled":
        return ControlStatus.FAIL, f"dailyaidecheck.timer {enabled.strip() or 'missing'}"
    return ControlStatus.PASS, "initialised, checked daily"


def check_unit_sandbox(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts (the application's units in ``hardening_app_units``), return
    whether each unit's exposure (``systemd-analyze security``) is at most the limit; the
    detail records each unit's exposure."""
    units = facts.settings.get("hardening_app_units") or []
    if not units:
        return ControlStatus.NOT_APPLICABLE, "no application unit named (hardening_app_units)"
    limit = control.params["max_exposure"]
    shown, worse = [], []
    for unit in units:
        rc, out = facts.run(f"systemd-analyze security --no-pager {_quote(str(unit))} 2>&1")
        match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
        if rc != 0 or not match:
            worse.append(f"{unit}: not analysed")
            continue
        exposure = float(match.group(1))
        shown.append(f"{unit} {exposure}")
        if exposure > limit:
            worse.append(f"{unit} {exposure} > {limit}")
    if worse:
        return ControlStatus.FAIL, "; ".join(worse + shown)
    return ControlStatus.PASS, "exposure " + "; ".join(shown)


CHECKS: Mapping[str, Callable[[HostFacts, Control], Verdict]] = {
    "sshd": check_sshd,
    "sysctl": check_sysctl,
    "nft_policy_drop": check_nft_policy_drop,
    "nft_ssh_restricted": check_nft_ssh_restricted,
    "service_enabled": check_service_enabled,
    "apt_periodic": check_apt_periodic,
    "apt_security_only": check_apt_security_only,
    "login_defs": check_login_defs,
    "login_defs_umask": check_login_defs_umask,
    "packages_absent": check_packages_absent,
    "file_mode": check_file_mode,
    "file_modes": check_file_modes,
    "sudo_default": check_sudo_default,
    "banner_files": check_banner_files,
    "login_defs_choice": check_login_defs_choice,
    "pwquality": check_pwquality,
    "pam_module": check_pam_module,
    "system_accounts": check_system_accounts,
    "home_modes": check_home_modes,
    "allow_file": check_allow_file,
    "core_dumps": check_core_dumps,
    "modules_disabled": check_modules_disabled,
    "fail2ban": check_fail2ban,
    "service_running": check_service_running,
    "default_file": check_default_file,
    "packages_present": check_packages_present,
    "auditd": check_auditd,
    "aide": check_aide,
    "unit_sandbox": check_unit_sandbox,
    "time_sync": check_time_sync,
}


def _switched_off(settings: Mapping[str, Any], control: Control) -> bool:
    value = settings.get(control.switch_variable, True)
    return str(value).strip().lower() in ("false", "no", "0", "off")


def judge(facts: HostFacts, control: Control) -> Verdict:
    """Given a host's facts and a control, return its verdict: not applicable below the
    level where it starts, a residual risk where the host's inventory switches it off,
    else what its check finds."""
    if not control.applies_at(facts.level):
        return ControlStatus.NOT_APPLICABLE, f"starts at {control.level.value}"
    if _switched_off(facts.settings, control):
        return (
            ControlStatus.RESIDUAL_RISK,
            f"switched off for this host ({control.switch_variable}: false in its inventory)",
        )
    return CHECKS[control.kind](facts, control)


def evaluate_host(
    host: str,
    probe: Probe,
    level: str,
    controls: Sequence[Control] = CONTROLS,
    settings: Mapping[str, Any] | None = None,
) -> HostCompliance:
    """Given a host name, a probe on it, the client's level, the controls and the host's
    inventory variables, return its compliance. A host the probe cannot reach is returned
    with ``error`` and no results.
    """
    facts = HostFacts(probe, level, settings)
    try:
        rc, _ = facts.run("true")
        if rc != 0:
            return HostCompliance(host, (), error="cannot run commands on the host")
        results = tuple(ControlResult(control.id, *judge(facts, control)) for control in controls)
    except Exception as error:
        # Any transport failure (SSH, sudo, host key) leaves the host unchecked, not the run.
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return HostCompliance(host, (), error=first[:300])
    return HostCompliance(host, results)


# --- testinfra ----------------------------------------------------------


@contextmanager
def _ansible_config(
    path: Path, vault_password_file: Path | None, client_dir: Path
) -> Iterator[None]:
    # testinfra reads ANSIBLE_CONFIG from the environment, and ssh inherits it.
    # testinfra runs ansible-inventory: the one installed beside this Python.
    # ansible-inventory decrypts the client's vault files (group_vars/all/vault.yml).
    # The engine's trust settings (strict host keys, the client's key alone) come last.
    tools = str(Path(sys.executable).parent)
    trust = ansible_trust_environment(client_dir, ANSIBLE_CFG)
    names = ("ANSIBLE_CONFIG", "PATH", "ANSIBLE_VAULT_PASSWORD_FILE", *trust)
    previous = {name: os.environ.get(name) for name in names}
    os.environ.update(trust)
    os.environ["ANSIBLE_CONFIG"] = str(path)
    os.environ["PATH"] = os.pathsep.join([tools, previous["PATH"] or os.defpath])
    vault_password = vault_password_file or os.environ.get(VAULT_PASSWORD_VARIABLE)
    if vault_password:
        os.environ["ANSIBLE_VAULT_PASSWORD_FILE"] = str(vault_password)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _render_inventory_vars(runner: Any, client_dir: Path) -> None:
    """Template the inventory's ``{{ inventory_dir }}`` values, which testinfra reads raw."""
    for host_vars in runner.inventory.get("_meta", {}).get("hostvars", {}).values():
        for name, value in list(host_vars.items()):
            if isinstance(value, str) and "{{" in value:
                host_vars[name] = re.sub(r"\{\{\s*inventory_dir\s*\}\}", str(client_dir), value)


def _testinfra_probe(host: Any) -> Probe:
    def probe(command: str) -> tuple[int, str]:
        done = host.run(command)
        return int(done.rc), str(done.stdout)

    return probe


def run_compliance(
    client: Client,
    hosts: Sequence[str],
    ansible_cfg: Path,
    vault_password_file: Path | None = None,
) -> list[HostCompliance]:
    """Given a client, the hosts to check, the ansible.cfg to use and the vault password
    file (default: WEBMG_VAULT_PASSWORD_FILE), return each host's compliance, checked in
    parallel over SSH. Raise EnvironmentProblem if testinfra is missing.
    """
    try:
        import testinfra
        from testinfra.utils.ansible_runner import AnsibleRunner
    except ImportError as missing:
        raise EnvironmentProblem("pytest-testinfra is not installed") from missing
    inventory = str(find_inventory_file(client.folder))
    with _ansible_config(ansible_cfg, vault_password_file, client.folder):
        runner = AnsibleRunner.get_runner(inventory)
        _render_inventory_vars(runner, client.folder)
        found = {
            host.backend.get_hostname(): host
            for host in testinfra.get_hosts(
                [f"ansible://{name}" for name in hosts], ansible_inventory=inventory, sudo=True
            )
        }
        probes = {name: _testinfra_probe(found[name]) for name in hosts if name in found}
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(hosts)))) as pool:
            checked = pool.map(
                lambda name: (
                    evaluate_host(
                        name,
                        probes[name],
                        client.policy.level.value,
                        settings=runner.get_variables(name),
                    )
                    if name in probes
                    else HostCompliance(name, (), error="not in the inventory")
                ),
                hosts,
            )
            return list(checked)


def failing(hosts: Sequence[HostCompliance]) -> dict[str, list[str]]:
    """Given hosts' compliance, return the failed control ids per host."""
    return {host.host: host.with_status(ControlStatus.FAIL) for host in hosts}


def statuses(document: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Given a compliance document, return host -> control -> status."""
    return {
        host: {cid: str(item["status"]) for cid, item in (data.get("controls") or {}).items()}
        for host, data in (document.get("hosts") or {}).items()
    }
