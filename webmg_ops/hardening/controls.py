"""The hardening control catalogue: the one place where controls are defined.

Each control has an id, a title, a rationale, its references (the CIS Debian
Linux 12 Benchmark v1.1.0's recommendation numbers, the dev-sec linux-baseline
and ssh-baseline control ids, or why neither has one), the role tag that
remediates it, the level where it starts (most hold on every level; a few only
from a higher one), the role variable that switches it off for a host, and a
check (``kind`` and its parameters) that :mod:`webmg_ops.hardening.compliance`
evaluates on a host. The role ``roles/hardening`` remediates; the checks verify
independently of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from webmg_ops.config.contract import Level
from webmg_ops.errors import BadInput


class ControlStatus(StrEnum):
    """The result of one control on one host."""

    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not-applicable"
    RESIDUAL_RISK = "residual-risk"


@dataclass(frozen=True)
class Control:
    """One control of the baseline.

    ``reference`` holds its reference ids separated by ``;`` (``CIS 5.1.14;
    dev-sec sshd-34``); ``level`` is the lowest service level whose baseline holds
    it; ``switch`` is the role variable (true or false) that turns it on or off for
    a host, empty when the area's own switch (``<remediation>_enabled``) does.
    """

    id: str
    title: str
    rationale: str
    reference: str
    remediation: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    level: Level = Level.STABILITY_SECURITY
    switch: str = ""

    @property
    def references(self) -> tuple[str, ...]:
        """Return the reference ids, one per item (``CIS 5.1.14``, ``dev-sec sshd-34``)."""
        return tuple(part.strip() for part in self.reference.split(";") if part.strip())

    @property
    def switch_variable(self) -> str:
        """Return the role variable that switches this control off for a host."""
        return self.switch or f"{self.remediation}_enabled"

    def applies_at(self, level: Level | str) -> bool:
        """Given a service level, return whether its baseline holds this control."""
        order = list(Level)
        return order.index(Level(level)) >= order.index(self.level)


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
         "dev-sec sshd-27", option="passwordauthentication", equals="no"),
    _ssh("SSH-02", "SSH keyboard-interactive authentication disabled",
         "Closes the other password path.", "dev-sec sshd-29",
         option="kbdinteractiveauthentication", equals="no"),
    _ssh("SSH-03", "SSH empty passwords refused", "An account without a password is not a login.",
         "CIS 5.1.19; dev-sec sshd-28", option="permitemptypasswords", equals="no"),
    _ssh("SSH-04", "SSH root login as the policy allows",
         "Root logs in with a key at most; never on institutional-sla.",
         "CIS 5.1.20; dev-sec sshd-06", option="permitrootlogin", root_policy=True),
    _ssh("SSH-05", "SSH ciphers are modern only", "Weak ciphers allow decryption.",
         "CIS 5.1.6; dev-sec sshd-01", option="ciphers", subset=MODERN_CIPHERS),
    _ssh("SSH-06", "SSH key exchange algorithms are modern only",
         "Weak key exchanges allow downgrade.", "CIS 5.1.12; dev-sec sshd-02",
         option="kexalgorithms", subset=MODERN_KEX),
    _ssh("SSH-07", "SSH MACs are modern only", "Weak MACs allow tampering.",
         "CIS 5.1.15; dev-sec sshd-03", option="macs", subset=MODERN_MACS),
    _ssh("SSH-08", "SSH MaxAuthTries at most 3", "Slows guessing on one connection.",
         "CIS 5.1.16; dev-sec sshd-19", option="maxauthtries", at_most=3),
    _ssh("SSH-09", "SSH LoginGraceTime at most 30 s", "Unauthenticated connections end fast.",
         "CIS 5.1.13; dev-sec sshd-18", option="logingracetime", at_most=30),
    _ssh("SSH-10", "SSH idle sessions are cut (ClientAliveInterval set)",
         "Abandoned sessions do not stay open.", "CIS 5.1.7; dev-sec sshd-36",
         option="clientaliveinterval", between=(1, 300)),
    _ssh("SSH-11", "SSH X11 forwarding disabled", "No display tunnels from servers.",
         "CIS 5.1.8; dev-sec sshd-42", option="x11forwarding", equals="no"),
    _ssh("SSH-12", "SSH agent forwarding disabled", "A server cannot use the engineer's agent.",
         "CIS 5.1.8; dev-sec sshd-40", option="allowagentforwarding", equals="no"),
    _ssh("SSH-13", "SSH TCP forwarding disabled", "A server is not a tunnel into the network.",
         "CIS 5.1.8; dev-sec sshd-39", option="allowtcpforwarding", equals="no"),
    _ssh("SSH-14", "SSH login banner shown", "States that access is authorised only.",
         "CIS 5.1.5", option="banner", not_equals="none"),
    _sysctl("NET-01", "ICMP redirects not accepted",
            "Redirects can reroute traffic through an attacker.",
            "CIS 3.3.5; CIS 3.3.6; dev-sec sysctl-14; dev-sec sysctl-15; dev-sec sysctl-20",
            {"net.ipv4.conf.all.accept_redirects": 0, "net.ipv4.conf.default.accept_redirects": 0,
             "net.ipv4.conf.all.secure_redirects": 0, "net.ipv6.conf.all.accept_redirects": 0}),
    _sysctl("NET-02", "ICMP redirects not sent", "A server is not a router.",
            "CIS 3.3.2; dev-sec sysctl-16",
            {"net.ipv4.conf.all.send_redirects": 0, "net.ipv4.conf.default.send_redirects": 0}),
    _sysctl("NET-03", "Source-routed packets refused", "Source routing bypasses routing policy.",
            "CIS 3.3.8; dev-sec sysctl-13", {"net.ipv4.conf.all.accept_source_route": 0,
                          "net.ipv4.conf.default.accept_source_route": 0}),
    _sysctl("NET-04", "Reverse path filtering on", "Drops spoofed source addresses.",
            "CIS 3.3.7; dev-sec sysctl-02",
            {"net.ipv4.conf.all.rp_filter": 1, "net.ipv4.conf.default.rp_filter": 1}),
    _sysctl("NET-05", "TCP SYN cookies on", "Resists SYN floods.", "CIS 3.3.10; dev-sec sysctl-11",
            {"net.ipv4.tcp_syncookies": 1}),
    _sysctl("NET-06", "Martian packets logged", "Spoofing attempts leave a trace.",
            "CIS 3.3.9; dev-sec sysctl-17",
            {"net.ipv4.conf.all.log_martians": 1, "net.ipv4.conf.default.log_martians": 1}),
    _sysctl("KRN-01", "ptrace restricted to descendants", "Processes cannot read others' memory.",
            "CIS 1.5.2", {"kernel.yama.ptrace_scope": 1}),
    _sysctl("KRN-02", "Kernel pointers hidden", "Hides addresses useful to exploits.",
            "KSPP (no CIS or dev-sec check)", {"kernel.kptr_restrict": 2}),
    _sysctl("KRN-03", "Kernel log restricted to root", "The kernel log leaks addresses.",
            "KSPP (no CIS or dev-sec check)", {"kernel.dmesg_restrict": 1}),
    _sysctl("KRN-04", "Set-uid programs do not dump core", "Core dumps leak secrets.",
            "CIS 1.5.3; dev-sec sysctl-31a", {"fs.suid_dumpable": 0}),
    _sysctl("KRN-05", "Full address space layout randomisation", "Makes exploits unreliable.",
            "CIS 1.5.1; dev-sec sysctl-32", {"kernel.randomize_va_space": 2}),
    _sysctl("KRN-06", "Hard and symbolic link protection", "Blocks link races in shared folders.",
            "dev-sec sysctl-34", {"fs.protected_hardlinks": 1, "fs.protected_symlinks": 1}),
    Control("FW-01", "Firewall drops unsolicited inbound traffic",
            "Only declared services are reachable.", "CIS 4.3.x", "hardening_firewall",
            "nft_policy_drop"),
    Control("FW-02", "SSH accepted from the management networks only",
            "The maintenance door is not open to the internet.", "CIS 4.3.x",
            "hardening_firewall", "nft_ssh_restricted"),
    Control("FW-03", "Firewall loaded at boot", "A reboot does not open the host.",
            "CIS 4.3.x", "hardening_firewall", "service_enabled", {"name": "nftables"}),
    Control("UPD-01", "Security updates installed automatically",
            "Known vulnerabilities are closed within a day.", "CIS 1.2.2.1", "hardening_updates",
            "apt_periodic"),
    Control("UPD-02", "Automatic updates limited to the security origin",
            "Other updates go through a governed, health-checked update run.", "CIS 1.2.2.1",
            "hardening_updates", "apt_security_only"),
    _login_defs("ACC-01", "PASS_MAX_DAYS", "<=", 365, "CIS 5.4.1.1; dev-sec os-05",
                "Passwords are changed at least yearly."),
    _login_defs("ACC-02", "PASS_MIN_DAYS", ">=", 1, "CIS 5.4.1.2; dev-sec os-05",
                "Stops cycling back to an old password."),
    _login_defs("ACC-03", "PASS_WARN_AGE", ">=", 7, "CIS 5.4.1.3; dev-sec os-05",
                "Users are warned before expiry."),
    Control("ACC-04", "Default umask 027", "New files are not world-readable.",
            "CIS 5.4.3.3; dev-sec os-05",
            "hardening_accounts", "login_defs_umask", {"value": "027"}),
    Control("PKG-01", "No legacy clear-text remote-access packages",
            "telnet and rsh send passwords in clear.",
            "CIS 2.2.2; CIS 2.2.4; dev-sec package-02; dev-sec package-03", "hardening_accounts",
            "packages_absent", {"names": ("telnet", "rsh-client", "rsh-server")}),
    _mode("FILE-01", "/etc/shadow", 0o640, "CIS 7.1.5; dev-sec os-02", group="shadow"),
    _mode("FILE-02", "/etc/crontab", 0o600, "CIS 2.4.1.2; dev-sec os-13"),
    Control("FILE-03", "Cron folders restricted to root", "Scheduled jobs cannot be altered.",
            "CIS 2.4.1.3-2.4.1.7; dev-sec os-13", "hardening_accounts", "file_modes",
            {"paths": ("/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly",
                       "/etc/cron.monthly", "/etc/cron.d"), "max_mode": 0o700}),
    _mode("FILE-04", "/etc/ssh/sshd_config", 0o600, "CIS 5.1.1; dev-sec sshd-05"),
    Control("SUDO-01", "sudo commands logged to a file", "Privileged actions are traceable.",
            "CIS 5.2.3", "hardening_accounts", "sudo_default", {"setting": "logfile="}),
    Control("TIME-01", "Clock synchronised by a time service",
            "Logs and certificates need correct time.", "CIS 2.3.1.1", "hardening_accounts",
            "time_sync", {"package": "systemd-timesyncd"}),
    # --- SSH beyond the crypto ------------------------------------------------------
    _ssh("SSH-15", "SSH logs key fingerprints (LogLevel VERBOSE)",
         "Each login names the key used, so a stolen key shows in the logs.",
         "CIS 5.1.14; dev-sec sshd-13", option="loglevel", equals="VERBOSE"),
    _ssh("SSH-16", "SSH compression disabled", "Compression has leaked secrets before.",
         "dev-sec ssh-hardening (role setting, no baseline check)",
         option="compression", equals="no"),
    _ssh("SSH-17", "SSH MaxSessions at most 10", "Bounds the sessions one connection opens.",
         "CIS 5.1.17; dev-sec sshd-20", option="maxsessions", at_most=10),
    _ssh("SSH-18", "SSH TCP keep-alives off", "Keep-alives are spoofable; ClientAlive is not.",
         "dev-sec sshd-35", option="tcpkeepalive", equals="no"),
    _ssh("SSH-19", "SSH ClientAliveCountMax at most 2", "Dead sessions end within minutes.",
         "CIS 5.1.7", option="clientalivecountmax", at_most=2),
    _ssh("SSH-20", "SSH all forwarding disabled (DisableForwarding)",
         "No tunnel of any kind through a server.", "CIS 5.1.8",
         option="disableforwarding", equals="yes"),
    _ssh("SSH-21", "SSH users cannot set the server's environment",
         "PermitUserEnvironment lets a key bypass restrictions.", "CIS 5.1.21; dev-sec sshd-17",
         option="permituserenvironment", equals="no"),
    _ssh("SSH-22", "SSH host-based authentication disabled",
         "Trust between hosts is not a login.", "CIS 5.1.10; dev-sec sshd-25",
         option="hostbasedauthentication", equals="no"),
    _ssh("SSH-23", "SSH ignores .rhosts", "Legacy trust files are never read.",
         "CIS 5.1.11; dev-sec sshd-23", option="ignorerhosts", equals="yes"),
    _ssh("SSH-24", "SSH unauthenticated connections are throttled (MaxStartups 10:30:60)",
         "Floods of half-open logins are dropped.", "CIS 5.1.18; dev-sec sshd-21",
         option="maxstartups", equals="10:30:60"),
    _ssh("SSH-26", "SSH authenticates through PAM", "Account locks and expiry apply to SSH.",
         "CIS 5.1.22", option="usepam", equals="yes"),
    _ssh("SSH-27", "SSH GSSAPI authentication disabled", "An unused authentication path is shut.",
         "CIS 5.1.9; dev-sec sshd-33", option="gssapiauthentication", equals="no"),
    Control("SSH-25", "Login banners in /etc/issue and /etc/issue.net, naming no system",
            "Warns before login; the OS and its version help an attacker.",
            "CIS 1.6.2; CIS 1.6.3; CIS 1.6.5; CIS 1.6.6", "hardening_ssh", "banner_files",
            {"paths": ("/etc/issue", "/etc/issue.net")}),
    # --- accounts and authentication ---------------------------------------------------
    Control("ACC-05", "Passwords hashed with SHA-512 or yescrypt",
            "Weak hashes fall to offline guessing.", "CIS 5.4.1.4",
            "hardening_accounts", "login_defs_choice",
            {"key": "ENCRYPT_METHOD", "values": ("SHA512", "YESCRYPT")}),
    _login_defs("ACC-06", "SHA_CRYPT_MIN_ROUNDS", ">=", 5000,
                "dev-sec os-hardening (role setting, no baseline check)",
                "Each guess of a stolen hash costs thousands of rounds."),
    Control("ACC-07", "Password quality enforced (pam_pwquality, 14 characters, 4 classes)",
            "Short or simple passwords are guessed.",
            "CIS 5.3.1.3; CIS 5.3.2.3; CIS 5.3.3.2.2; CIS 5.3.3.2.3",
            "hardening_accounts", "pwquality", {"minlen": 14, "minclass": 4}),
    Control("ACC-08", "Each session has a private temporary folder (pam_tmpdir)",
            "Shared /tmp invites symlink and race attacks.",
            "Debian libpam-tmpdir (no CIS or dev-sec check)",
            "hardening_accounts", "pam_module",
            {"package": "libpam-tmpdir", "module": "pam_tmpdir.so",
             "file": "/etc/pam.d/common-session"}),
    Control("ACC-09", "System accounts have no login shell",
            "A service account is never a way in.", "CIS 5.4.2.7; CIS 5.4.2.8",
            "hardening_accounts", "system_accounts",
            {"exempt": ("root", "sync", "shutdown", "halt")}),
    Control("ACC-10", "Home folders not readable by group or others",
            "One user cannot read another's files.", "CIS 7.2.9",
            "hardening_accounts", "home_modes", {"max_mode": 0o750}),
    Control("ACC-11", "cron limited to the users in cron.allow",
            "Nobody else schedules jobs.", "CIS 2.4.1.8",
            "hardening_accounts", "allow_file",
            {"allow": "/etc/cron.allow", "deny": "/etc/cron.deny", "max_mode": 0o640}),
    Control("ACC-12", "at limited to the users in at.allow",
            "Nobody else schedules jobs.", "CIS 2.4.2.1",
            "hardening_accounts", "allow_file",
            {"allow": "/etc/at.allow", "deny": "/etc/at.deny", "max_mode": 0o640,
             "only_with": "/usr/bin/at"}),
    _mode("FILE-05", "/etc/gshadow", 0o640, "CIS 7.1.7", group="shadow"),
    Control("SUDO-02", "sudo runs commands in a pseudo-terminal",
            "A command cannot keep running in the background after sudo ends.", "CIS 5.2.2",
            "hardening_accounts", "sudo_default", {"setting": "use_pty"}),
    # --- kernel and filesystems ------------------------------------------------------
    Control("KRN-07", "Core dumps off (hard limit 0, systemd-coredump stores nothing)",
            "A core dump holds the process's secrets.", "CIS 1.5.3; dev-sec sysctl-31a",
            "hardening_kernel", "core_dumps"),
    Control("MOD-01", "Uncommon network protocols cannot be loaded (dccp, sctp, rds, tipc)",
            "Rarely used protocol code is where kernel holes hide.",
            "CIS 3.2.1; CIS 3.2.2; CIS 3.2.3; CIS 3.2.4", "hardening_kernel", "modules_disabled",
            {"modules": ("dccp", "sctp", "rds", "tipc")}),
    Control("MOD-02", "Uncommon filesystems cannot be mounted",
            "A crafted disk image attacks the filesystem's code.",
            "CIS 1.1.1.1-1.1.1.5; CIS 1.1.1.8; dev-sec os-10",
            "hardening_kernel", "modules_disabled",
            {"modules": ("cramfs", "freevxfs", "hfs", "hfsplus", "jffs2", "udf")}),
    Control("MOD-03", "USB and FireWire storage cannot be loaded",
            "A plugged device cannot carry data in or out.", "CIS 1.1.1.9",
            "hardening_kernel", "modules_disabled",
            {"modules": ("usb_storage", "firewire_core")}),
    # --- detection and accounting ----------------------------------------------------
    Control("DET-01", "fail2ban bans repeated SSH failures",
            "Password and key guessing is cut off early.", "operational (no CIS or dev-sec check)",
            "hardening_detection", "fail2ban", {"jail": "sshd"},
            switch="hardening_fail2ban_enabled"),
    Control("DET-02", "Process accounting on (acct)", "Who ran what is kept.",
            "operational (no CIS or dev-sec check)", "hardening_detection", "service_running",
            {"package": "acct", "unit": "acct"}, switch="hardening_acct_enabled"),
    Control("DET-03", "System activity collected (sysstat)", "Load history explains incidents.",
            "operational (no CIS or dev-sec check)", "hardening_detection", "default_file",
            {"package": "sysstat", "path": "/etc/default/sysstat", "key": "ENABLED",
             "values": ("true",)}, switch="hardening_sysstat_enabled"),
    Control("DET-04", "auditd records the CIS event groups",
            "Changes to identity, time, permissions and privileges are traceable.",
            "CIS 6.2.1.1; CIS 6.2.1.2; CIS 6.2.3.x; dev-sec package-08",
            "hardening_detection", "auditd",
            {"keys": ("scope", "time-change", "access", "identity", "perm_mod", "mounts",
                      "session", "logins", "delete", "MAC-policy", "kernel_modules")},
            switch="hardening_auditd_enabled"),
    Control("DET-05", "File integrity checked daily (AIDE, initialised)",
            "A changed system file is noticed.", "CIS 6.3.1; CIS 6.3.2",
            "hardening_detection", "aide", switch="hardening_aide_enabled"),
    Control("DET-06", "Installed files checked against their packages (debsums)",
            "A replaced binary is noticed.", "operational (no CIS or dev-sec check)",
            "hardening_detection", "default_file",
            {"package": "debsums", "path": "/etc/default/debsums", "key": "CRON_CHECK",
             "values": ("daily", "weekly", "monthly")}, switch="hardening_debsums_enabled"),
    Control("DET-07", "Services using upgraded libraries are listed (needrestart)",
            "An update is not done until the old code stops running.",
            "operational (no CIS or dev-sec check)", "hardening_detection", "packages_present",
            {"names": ("needrestart",)}, switch="hardening_needrestart_enabled"),
    Control("DET-08", "Changes of upgraded packages are kept (apt-listchanges)",
            "What an update changed can be read afterwards.",
            "operational (no CIS or dev-sec check)", "hardening_detection", "packages_present",
            {"names": ("apt-listchanges",)}, switch="hardening_apt_listchanges_enabled"),
    Control("DET-09", "Rootkits looked for daily (rkhunter)",
            "A compromised host is found by its traces.", "operational (no CIS or dev-sec check)",
            "hardening_detection", "default_file",
            {"package": "rkhunter", "path": "/etc/default/rkhunter", "key": "CRON_DAILY_RUN",
             "values": ("true", "yes")},
            level=Level.INSTITUTIONAL_SLA, switch="hardening_rootkit_enabled"),
    # --- the application -------------------------------------------------------------
    Control("APP-01", "The application's services are sandboxed by systemd",
            "A hole in the application does not reach the rest of the host.",
            "systemd.exec(5) sandboxing (no CIS or dev-sec check)",
            "hardening_app", "unit_sandbox", {"max_exposure": 5.0}),
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
