#!/usr/bin/python3
"""Print this host's package state and update plan as JSON.

Given one argument, a JSON object with ``mode`` (security, all or approved),
``holds`` (package names never touched), ``approved`` (package -> exact
version, for approved mode), ``services`` (units that must be active),
``expect_running`` (units that ran before the update), ``attempts`` and
``interval_s`` (how long to wait for restarted services), print:

- ``packages``: every installed package as ``name=version`` (what a
  rollback installs again);
- ``services``: running services and their systemd invocation ids (a new id
  means the service was restarted);
- ``lasting_services``: those of ``services`` meant to keep running (what
  ``expect_running`` is read from): enabled, or pulled in by another unit.
  A service started on demand (a D-Bus call starts systemd-timedated, which
  exits when idle) may be gone a minute later for no fault of the update;
- ``required_services``: the state (``systemctl is-active``) of ``services``;
- ``services_stopped``: units of ``expect_running`` that no longer run;
- ``reboot_required`` and ``reboot_packages`` (``/run/reboot-required``);
- ``plan``: per package to update, ``name``, ``old``, ``new``, ``origin``,
  ``security``, and ``install``: the same as ``name=new`` for apt;
- ``held``: updates the mode would make but a hold forbids;
- ``not_applicable``: approved versions that cannot be installed, and why;
- ``approved_installed``: per approved package, its installed version (None:
  not installed), read the same way before and after (what a deploy proves).

Read-only: it opens apt's cache and asks systemd, it changes nothing.
"""

import functools
import json
import os
import subprocess
import sys
import time

import apt_pkg

REBOOT_REQUIRED = "/run/reboot-required"
SECURITY_WORDS = ("security",)


def newest(versions):
    """Given apt versions, return the newest one by Debian version order."""
    return max(versions, key=functools.cmp_to_key(lambda a, b: apt_pkg.version_compare(a.ver_str, b.ver_str)))


def repository_files(version):
    """Given an apt version, return the package files of the repositories that publish it."""
    # The dpkg status file lists the installed version too; it is no repository.
    return [package_file for package_file, _index in version.file_list if package_file.archive not in ("now", "")]


def origin_of(version):
    """Given an apt version, return where it comes from, e.g. ``Debian-Security/bookworm-security``."""
    for package_file in repository_files(version):
        label = package_file.label or package_file.origin or "unknown"
        return f"{label}/{package_file.codename or package_file.archive}"
    return "local"


def is_security(version):
    """Given an apt version, return whether a security suite publishes it."""
    return any(
        any(word in f"{pf.archive} {pf.label} {pf.codename}".lower() for word in SECURITY_WORDS)
        for pf in repository_files(version)
    )


def target_of(package, installed, mode, approved, policy):
    """Given a package, its installed version and the mode, return (target version, reason if none)."""
    newer = [v for v in package.version_list if apt_pkg.version_compare(v.ver_str, installed.ver_str) > 0 and repository_files(v)]
    if mode == "all":
        candidate = policy.get_candidate_ver(package)
        if candidate is not None and apt_pkg.version_compare(candidate.ver_str, installed.ver_str) > 0:
            return candidate, None
        return None, None
    if mode == "security":
        secure = [version for version in newer if is_security(version)]
        return (newest(secure), None) if secure else (None, None)
    wanted = approved.get(package.name)
    if wanted is None:
        return None, None
    comparison = apt_pkg.version_compare(wanted, installed.ver_str)
    if comparison == 0:
        return None, None
    if comparison < 0:
        return None, f"installed {installed.ver_str} is newer than the approved {wanted}; never downgraded"
    exact = [version for version in newer if version.ver_str == wanted]
    if not exact:
        return None, f"approved version {wanted} is not available from the configured sources"
    return exact[0], None


def running_services():
    """Return the running services: their invocation ids, and which of them are lasting.

    A service lasts when it is enabled or another unit wants or requires it;
    one that is neither was started on demand or by hand, and may end by itself.
    """
    listed = subprocess.run(
        ["systemctl", "list-units", "--type=service", "--state=running", "--no-legend", "--plain"],
        capture_output=True, text=True, check=False,
    ).stdout
    units = sorted(line.split()[0] for line in listed.splitlines() if line.strip())
    if not units:
        return {}, []
    shown = subprocess.run(
        ["systemctl", "show", "--property=Id,InvocationID,UnitFileState,WantedBy,RequiredBy", *units],
        capture_output=True, text=True, check=False,
    ).stdout
    services, lasting = {}, []
    # systemctl show prints one block of KEY=value lines per unit, blocks apart by a blank line.
    for block in shown.split("\n\n"):
        properties = dict(line.partition("=")[::2] for line in block.splitlines() if "=" in line)
        unit = properties.get("Id")
        if not unit:
            continue
        services[unit] = properties.get("InvocationID", "")
        pulled_in = properties.get("WantedBy") or properties.get("RequiredBy")
        if pulled_in or properties.get("UnitFileState", "").startswith("enabled"):
            lasting.append(unit)
    return services, lasting


def service_states(names):
    """Given service names, return each one's ``systemctl is-active`` answer."""
    states = {}
    for name in names:
        done = subprocess.run(["systemctl", "is-active", name], capture_output=True, text=True, check=False)
        states[name] = done.stdout.strip() or "unknown"
    return states


def wait_for_services(request):
    """Given the request, return (running services, lasting ones, expected ones stopped,
    required states).

    Services restarted by an update may take a moment to run again: they are
    read again, up to ``attempts`` times, while one is missing.
    """
    expected = set(request.get("expect_running") or [])
    names = request.get("services") or []
    attempts = max(1, int(request.get("attempts", 1)))
    for attempt in range(1, attempts + 1):
        services, lasting = running_services()
        stopped = sorted(expected - set(services))
        required = service_states(names)
        if (not stopped and all(state == "active" for state in required.values())) or attempt == attempts:
            return services, lasting, stopped, required
        time.sleep(float(request.get("interval_s", 1)))
    return {}, [], sorted(expected), {}


def main():
    request = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    mode = request.get("mode", "security")
    holds = set(request.get("holds") or [])
    approved = {str(name): str(version) for name, version in (request.get("approved") or {}).items()}
    apt_pkg.init()
    cache = apt_pkg.Cache(progress=None)
    policy = apt_pkg.Policy(cache)
    policy.init_defaults()
    packages, plan, held, not_applicable = [], [], [], []
    approved_installed = dict.fromkeys(approved)
    for package in sorted(cache.packages, key=lambda p: p.get_fullname(True)):
        installed = package.current_ver
        if installed is None:
            continue
        name = package.get_fullname(True)
        packages.append(f"{name}={installed.ver_str}")
        if package.name in approved_installed:
            approved_installed[package.name] = installed.ver_str
        target, reason = target_of(package, installed, mode, approved, policy)
        if reason:
            not_applicable.append({"name": name, "version": approved.get(package.name), "reason": reason})
        if target is None:
            continue
        change = {
            "name": name,
            "old": installed.ver_str,
            "new": target.ver_str,
            "origin": origin_of(target),
            "security": is_security(target),
        }
        if package.name in holds or package.selected_state == apt_pkg.SELSTATE_HOLD:
            held.append(change)
        else:
            plan.append(change)
    installed_names = {entry.split("=", 1)[0] for entry in packages}
    for name, version in sorted(approved.items()) if mode == "approved" else ():
        if name not in installed_names:
            not_applicable.append({"name": name, "version": version, "reason": "not installed on this host"})
    services, lasting, stopped, required = wait_for_services(request)
    reboot_packages = []
    if os.path.exists(REBOOT_REQUIRED + ".pkgs"):
        with open(REBOOT_REQUIRED + ".pkgs", encoding="utf-8") as listing:
            reboot_packages = sorted({line.strip() for line in listing if line.strip()})
    print(json.dumps({
        "packages": packages,
        "services": services,
        "lasting_services": lasting,
        "services_stopped": stopped,
        "required_services": required,
        "reboot_required": os.path.exists(REBOOT_REQUIRED),
        "reboot_packages": reboot_packages,
        "plan": plan,
        "install": [f"{change['name']}={change['new']}" for change in plan],
        "held": held,
        "not_applicable": not_applicable,
        "approved_installed": approved_installed,
    }))


if __name__ == "__main__":
    main()
