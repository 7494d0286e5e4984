"""The hardening control catalogue: the one place where controls are defined.

Each control has an id, a title, a rationale, its CIS Debian / dev-sec
reference, the role tag that remediates it and a check (``kind`` and its
parameters) that :mod:`webmg_ops.hardening.compliance` evaluates on a host. The role
``roles/hardening`` remediates; the checks verify independently of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from webmg_ops.errors import BadInput


class ControlStatus(StrEnum):
    """The result of one control on one host."""

    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not-applicable"
    RESIDUAL_RISK = "residual-risk"


@dataclass(frozen=True)
class Control:
    """One control of the baseline."""

    id: str
    title: str
    rationale: str
    reference: str
    remediation: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)


MODERN_CIPHERS = (
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)
MODERN_KEX = (
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha256",
)
MODERN_MACS = (
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
    "hmac-sha2-512",
    "hmac-sha2-256",
)

#: The level whose policy forbids root login over SSH altogether.
ROOT_LOGIN_BY_LEVEL: Mapping[str, tuple[str, ...]] = {
    "institutional-sla": ("no",),
}
#: Root login values acceptable at every other level (key only, or none).
ROOT_LOGIN_DEFAULT: tuple[str, ...] = ("no", "prohibit-password", "without-password")


def _ssh(cid: str, title: str, rationale: str, ref: str, **params: Any) -> Control:
    return Control(cid, title, rationale, ref, "hardening_ssh", "sshd", params)


def _sysctl(cid: str, title: str, rationale: str, ref: str, settings: dict[str, int]) -> Control:
    return Control(cid, title, rationale, ref, "hardening_sysctl", "sysctl", {"settings": settings})


def _mode(cid: str, path: str, mode: int, ref: str, group: str = "root") -> Control:
    return Control(
        cid,
        f"{path} owned by root and not writable or readable by others",
        "Sensitive configuration must not be changed or read by unprivileged users.",
        ref,
        "hardening_accounts",
        "file_mode",
        {"path": path, "max_mode": mode, "owner": "root", "group": group},
    )


def _login_defs(cid: str, key: str, op: str, value: int, ref: str, rationale: str) -> Control:
    return Control(
        cid,
        f"{key} {op} {value} in /etc/login.defs",
        rationale,
        ref,
        "hardening_accounts",
        "login_defs",
        {"key": key, "op": op, "value": value},
    )


CONTROLS: tuple[Control, ...] = (
    _ssh("SSH-01", "SSH password authentication disabled", "Keys only: no password guessing.",
         "CIS 5.2.x; dev-sec ssh-baseline sshd-22", option="passwordauthentication", equals="no"),
    _ssh("SSH-02", "SSH keyboard-interactive authentication disabled",
         "Closes the other password path.", "dev-sec ssh-baseline sshd-23",
         option="kbdinteractiveauthentication", equals="no"),
    _ssh("SSH-03", "SSH empty passwords refused", "An account without a password is not a login.",
         "CIS 5.2.11; dev-sec sshd-21", option="permitemptypasswords", equals="no"),
    _ssh("SSH-04", "SSH root login as the policy allows",
         "Root logs in with a key at most; never on institutional-sla.",
         "CIS 5.2.10; dev-sec sshd-08", option="permitrootlogin", root_policy=True),
    _ssh("SSH-05", "SSH ciphers are modern only", "Weak ciphers allow decryption.",
         "CIS 5.2.13; dev-sec sshd-03", option="ciphers", subset=MODERN_CIPHERS),
    _ssh("SSH-06", "SSH key exchange algorithms are modern only",
         "Weak key exchanges allow downgrade.", "CIS 5.2.15; dev-sec sshd-05",
         option="kexalgorithms", subset=MODERN_KEX),
    _ssh("SSH-07", "SSH MACs are modern only", "Weak MACs allow tampering.",
         "CIS 5.2.14; dev-sec sshd-04", option="macs", subset=MODERN_MACS),
    _ssh("SSH-08", "SSH MaxAuthTries at most 3", "Slows guessing on one connection.",
         "CIS 5.2.18; dev-sec sshd-14", option="maxauthtries", at_most=3),
    _ssh("SSH-09", "SSH LoginGraceTime at most 30 s", "Unauthenticated connections end fast.",
         "CIS 5.2.21; dev-sec sshd-16", option="logingracetime", at_most=30),
    _ssh("SSH-10", "SSH idle sessions are cut (ClientAliveInterval set)",
         "Abandoned sessions do not stay open.", "CIS 5.2.22; dev-sec sshd-11",
         option="clientaliveinterval", between=(1, 300)),
    _ssh("SSH-11", "SSH X11 forwarding disabled", "No display tunnels from servers.",
         "CIS 5.2.12; dev-sec sshd-39", option="x11forwarding", equals="no"),
    _ssh("SSH-12", "SSH agent forwarding disabled", "A server cannot use the engineer's agent.",
         "dev-sec sshd-38", option="allowagentforwarding", equals="no"),
    _ssh("SSH-13", "SSH TCP forwarding disabled", "A server is not a tunnel into the network.",
         "CIS 5.2.17; dev-sec sshd-37", option="allowtcpforwarding", equals="no"),
    _ssh("SSH-14", "SSH login banner shown", "States that access is authorised only.",
         "CIS 5.2.19", option="banner", not_equals="none"),
    _sysctl("NET-01", "ICMP redirects not accepted",
            "Redirects can reroute traffic through an attacker.", "CIS 3.3.2, 3.3.3",
            {"net.ipv4.conf.all.accept_redirects": 0, "net.ipv4.conf.default.accept_redirects": 0,
             "net.ipv4.conf.all.secure_redirects": 0, "net.ipv6.conf.all.accept_redirects": 0}),
    _sysctl("NET-02", "ICMP redirects not sent", "A server is not a router.", "CIS 3.2.1",
            {"net.ipv4.conf.all.send_redirects": 0, "net.ipv4.conf.default.send_redirects": 0}),
    _sysctl("NET-03", "Source-routed packets refused", "Source routing bypasses routing policy.",
            "CIS 3.3.1", {"net.ipv4.conf.all.accept_source_route": 0,
                          "net.ipv4.conf.default.accept_source_route": 0}),
    _sysctl("NET-04", "Reverse path filtering on", "Drops spoofed source addresses.",
            "CIS 3.3.7", {"net.ipv4.conf.all.rp_filter": 1, "net.ipv4.conf.default.rp_filter": 1}),
    _sysctl("NET-05", "TCP SYN cookies on", "Resists SYN floods.", "CIS 3.3.8",
            {"net.ipv4.tcp_syncookies": 1}),
    _sysctl("NET-06", "Martian packets logged", "Spoofing attempts leave a trace.", "CIS 3.3.4",
            {"net.ipv4.conf.all.log_martians": 1, "net.ipv4.conf.default.log_martians": 1}),
    _sysctl("KRN-01", "ptrace restricted to descendants", "Processes cannot read others' memory.",
            "CIS 1.5.x; dev-sec os-09", {"kernel.yama.ptrace_scope": 1}),
    _sysctl("KRN-02", "Kernel pointers hidden", "Hides addresses useful to exploits.",
            "dev-sec os-09", {"kernel.kptr_restrict": 2}),
    _sysctl("KRN-03", "Kernel log restricted to root", "The kernel log leaks addresses.",
            "dev-sec os-09", {"kernel.dmesg_restrict": 1}),
    _sysctl("KRN-04", "Set-uid programs do not dump core", "Core dumps leak secrets.",
            "CIS 1.5.1", {"fs.suid_dumpable": 0}),
    _sysctl("KRN-05", "Full address space layout randomisation", "Makes exploits unreliable.",
            "CIS 1.5.2", {"kernel.randomize_va_space": 2}),
    _sysctl("KRN-06", "Hard and symbolic link protection", "Blocks link races in shared folders.",
            "dev-sec os-09", {"fs.protected_hardlinks": 1, "fs.protected_symlinks": 1}),
    Control("FW-01", "Firewall drops unsolicited inbound traffic",
            "Only declared services are reachable.", "CIS 3.5.2.x", "hardening_firewall",
            "nft_policy_drop"),
    Control("FW-02", "SSH accepted from the management networks only",
            "The maintenance door is not open to the internet.", "CIS 3.5.2.x",
            "hardening_firewall", "nft_ssh_restricted"),
    Control("FW-03", "Firewall loaded at boot", "A reboot does not open the host.",
            "CIS 3.5.2.x", "hardening_firewall", "service_enabled", {"name": "nftables"}),
    Control("UPD-01", "Security updates installed automatically",
            "Known vulnerabilities are closed within a day.", "CIS 1.9", "hardening_updates",
            "apt_periodic"),
    Control("UPD-02", "Automatic updates limited to the security origin",
            "Other updates go through a governed, health-checked update run.", "CIS 1.9",
            "hardening_updates", "apt_security_only"),
    _login_defs("ACC-01", "PASS_MAX_DAYS", "<=", 365, "CIS 5.5.1.2",
                "Passwords are changed at least yearly."),
    _login_defs("ACC-02", "PASS_MIN_DAYS", ">=", 1, "CIS 5.5.1.1",
                "Stops cycling back to an old password."),
    _login_defs("ACC-03", "PASS_WARN_AGE", ">=", 7, "CIS 5.5.1.3",
                "Users are warned before expiry."),
    Control("ACC-04", "Default umask 027", "New files are not world-readable.", "CIS 5.5.4",
            "hardening_accounts", "login_defs_umask", {"value": "027"}),
    Control("PKG-01", "No legacy clear-text remote-access packages",
            "telnet and rsh send passwords in clear.", "CIS 2.3.x", "hardening_accounts",
            "packages_absent", {"names": ("telnet", "rsh-client", "rsh-server")}),
    _mode("FILE-01", "/etc/shadow", 0o640, "CIS 6.1.x", group="shadow"),
    _mode("FILE-02", "/etc/crontab", 0o600, "CIS 5.1.2"),
    Control("FILE-03", "Cron folders restricted to root", "Scheduled jobs cannot be altered.",
            "CIS 5.1.3-5.1.7", "hardening_accounts", "file_modes",
            {"paths": ("/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly",
                       "/etc/cron.monthly", "/etc/cron.d"), "max_mode": 0o700}),
    _mode("FILE-04", "/etc/ssh/sshd_config", 0o600, "CIS 5.2.1"),
    Control("SUDO-01", "sudo commands logged to a file", "Privileged actions are traceable.",
            "CIS 5.3.3", "hardening_accounts", "sudo_logfile"),
    Control("TIME-01", "Clock synchronised by a time service",
            "Logs and certificates need correct time.", "CIS 2.1.1", "hardening_accounts",
            "time_sync", {"package": "systemd-timesyncd"}),
)  # fmt: skip

_BY_ID: Mapping[str, Control] = {control.id: control for control in CONTROLS}


def find_control(control_id: str) -> Control:
    """Given a control id, return its control. Raise BadInput if there is none."""
    try:
        return _BY_ID[control_id]
    except KeyError:
        raise BadInput(f"unknown control {control_id!r}") from None


def root_login_allowed(level: str) -> tuple[str, ...]:
    """Given a service level, return the PermitRootLogin values its policy allows."""
    return ROOT_LOGIN_BY_LEVEL.get(level, ROOT_LOGIN_DEFAULT)


def root_login_setting(level: str) -> str:
    """Given a service level, return the PermitRootLogin the role writes."""
    return "no" if root_login_allowed(level) == ("no",) else "prohibit-password"
