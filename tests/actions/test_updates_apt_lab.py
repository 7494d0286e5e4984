"""Controlled updates keep to apt's safety rules on rehearsal-lab hosts: real apt and dpkg.

Proves that ``approved`` mode never downgrades, that packages held with
``apt-mark`` are never upgraded, that apt runs non-interactively, keeps a
configuration file the host changed and installs no newly recommended
package, and that it waits for a dpkg lock another process holds.

Every expectation is read from the host itself (``dpkg-query``, the files
on disk). The lab's repository serves ``webmg-demo-app`` 1.0, 1.1 (security
suite) and 1.2 (updates suite, breaks its health check) and
``webmg-demo-tools`` 1.0 and 1.1; hosts start at 1.0. A test that needs
packages the demo lacks (configuration files, a Recommends) publishes them
in a signed suite of its own (:mod:`support.apt_suite`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.apt_suite import SuitePackage, served_suite
from support.lab import Lab, edited_contract, edited_file
from support.updates import (
    always_open,
    dpkg_lock_taken_during_the_update,
    finished,
    installed,
    report_of,
    running_update,
    selection,
    update,
    write_host_file,
)
from support.waiting import wait_until

from webmg_ops.errors import ExitCode

pytestmark = pytest.mark.lab

#: Mode ``all`` (continuous-evolution); its database host has no health check of its own
#: and no demo site, so an update there never fails health and is never rolled back.
ALL_MODE_CLIENT, ALL_MODE_HOST, ALL_MODE_ADDRESS = "terre-solidaire", "terre-db1", "198.18.0.23"
#: Mode ``approved`` (institutional-sla): its first web host runs the demo site.
APPROVED_CLIENT, APPROVED_HOST, APPROVED_ADDRESS = "riverton", "riverton-web1", "198.18.0.31"

CONF_FILE = "/etc/webmg-test-conf/settings.conf"
#: Written by the package's postinst: the version configured and the frontend apt gave it.
CONFIGURED_RECORD = "/var/lib/webmg-test-conf/configured"
HOST_SETTINGS = "# Changed on this host by its administrator.\nlevel = 7\n"


def test_approved_mode_never_downgrades_a_package_newer_than_its_approved_version(
    lab: Lab, changed_hosts: list[str]
) -> None:
    changed_hosts.append(APPROVED_HOST)
    # The host already runs 1.1 (installed outside any run); the approved file then names
    # 1.0, older but served by the repository, beside an approved upgrade of the tools.
    prepared = lab.ssh(
        APPROVED_ADDRESS,
        "sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive"
        " apt-get install -y -qq webmg-demo-app=1.1",
    )
    assert prepared.returncode == 0, prepared.stderr
    before = installed(lab, APPROVED_ADDRESS)
    assert (before["webmg-demo-app"], before["webmg-demo-tools"]) == ("1.1", "1.0")
    approved = 'webmg-demo-app: "1.0"\nwebmg-demo-tools: "1.1"\n'
    approved_file = lab.inventories / APPROVED_CLIENT / "approved-versions.yml"
    with (
        edited_contract(lab.inventories, APPROVED_CLIENT, always_open),
        edited_file(approved_file, approved),
    ):
        approval = lab.cli(
            "approve", APPROVED_CLIENT, "update", "--by", "M. Reed", "--note", "CHG-8"
        )
        assert approval.returncode == ExitCode.OK, approval.stderr
        code, report = update(lab, APPROVED_CLIENT, (APPROVED_HOST,))
    assert code == ExitCode.OK, report
    # The approved upgrade went in; the approved downgrade did not: 1.1 still runs.
    assert installed(lab, APPROVED_ADDRESS) == {**before, "webmg-demo-tools": "1.1"}
    evidence = finished(lab, report["run_id"])["evidence"]["hosts"][APPROVED_HOST]
    assert [(item["name"], item["old"], item["new"]) for item in evidence["packages"]] == [
        ("webmg-demo-tools", "1.0", "1.1")
    ]
    (refused,) = [item for item in evidence["not_applicable"] if item["name"] == "webmg-demo-app"]
    assert refused["version"] == "1.0"
    assert "never downgraded" in refused["reason"], refused


def test_a_package_held_with_apt_mark_is_never_upgraded(lab: Lab, changed_hosts: list[str]) -> None:
    changed_hosts.append(ALL_MODE_HOST)
    contract = yaml.safe_load((lab.inventories / ALL_MODE_CLIENT / "client.yml").read_text())
    # The hold is the host's own (apt-mark), not one of the contract's.
    assert not (contract.get("updates") or {}).get("holds")
    held = lab.ssh(ALL_MODE_ADDRESS, "sudo apt-mark hold webmg-demo-tools")
    assert held.returncode == 0, held.stderr
    try:
        with edited_contract(lab.inventories, ALL_MODE_CLIENT, always_open):
            code, report = update(lab, ALL_MODE_CLIENT, (ALL_MODE_HOST,))
        assert code == ExitCode.OK, report
        # An update was there to take (apt offers 1.1), and 1.0 stays, still held.
        offered = lab.ssh(ALL_MODE_ADDRESS, "apt-cache madison webmg-demo-tools")
        assert "1.1" in offered.stdout.split(), offered.stdout
        assert installed(lab, ALL_MODE_ADDRESS)["webmg-demo-tools"] == "1.0"
        assert selection(lab, ALL_MODE_ADDRESS, "webmg-demo-tools") == "hold"
        payload = finished(lab, report["run_id"])
        evidence = payload["evidence"]["hosts"][ALL_MODE_HOST]
        assert [(item["name"], item["old"], item["new"]) for item in evidence["held"]] == [
            ("webmg-demo-tools", "1.0", "1.1")
        ]
        assert evidence["packages"] == []
        assert any(
            risk["host"] == ALL_MODE_HOST and "held update" in risk["risk"]
            for risk in payload["residual_risks"]
        ), payload["residual_risks"]
    finally:
        lab.ssh(ALL_MODE_ADDRESS, "sudo apt-mark unhold webmg-demo-tools")


def conf_package(version: str, level: int, recommends: tuple[str, ...] = ()) -> SuitePackage:
    """Return a version of a package with one configuration file and a postinst that
    records the frontend apt configured it with.
    """
    postinst = (
        "#!/bin/sh\nset -e\n"
        f"mkdir -p {Path(CONFIGURED_RECORD).parent}\n"
        f'echo "version={version} frontend=${{DEBIAN_FRONTEND:-}}" > {CONFIGURED_RECORD}\n'
    )
    return SuitePackage(
        name="webmg-test-conf",
        version=version,
        files={
            CONF_FILE.lstrip("/"): f"# Shipped by webmg-test-conf {version}.\nlevel = {level}\n"
        },
        conffiles=(CONF_FILE,),
        recommends=recommends,
        postinst=postinst,
    )


def test_apt_runs_non_interactively_keeps_changed_configuration_and_adds_no_recommends(
    lab: Lab, changed_hosts: list[str]
) -> None:
    old, new = conf_package("1.0", 1), conf_package("1.1", 2, recommends=("webmg-test-extra",))
    extra = SuitePackage(
        "webmg-test-extra", "1.0", files={"usr/share/webmg-test-extra/README": "recommended\n"}
    )
    changed_hosts.append(ALL_MODE_HOST)
    with served_suite(lab, "webmg-tests-conffiles", (old, new, extra)) as sources:
        write_host_file(
            lab, ALL_MODE_ADDRESS, "/etc/apt/sources.list.d/webmg-tests.sources", sources
        )
        # Debian's default, said aloud: only the run's own setting keeps recommends out.
        write_host_file(
            lab,
            ALL_MODE_ADDRESS,
            "/etc/apt/apt.conf.d/99webmg-tests-recommends",
            'APT::Install-Recommends "true";\n',
        )
        prepared = lab.ssh(
            ALL_MODE_ADDRESS,
            "sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive"
            " apt-get install -y -qq webmg-test-conf=1.0",
        )
        assert prepared.returncode == 0, prepared.stderr
        # The host's administrator changes the configuration file the package shipped.
        write_host_file(lab, ALL_MODE_ADDRESS, CONF_FILE, HOST_SETTINGS)
        before = installed(lab, ALL_MODE_ADDRESS)
        assert before["webmg-test-conf"] == "1.0" and "webmg-test-extra" not in before
        with edited_contract(lab.inventories, ALL_MODE_CLIENT, always_open):
            code, report = update(lab, ALL_MODE_CLIENT, (ALL_MODE_HOST,))
    # Had dpkg asked about the changed file, it would have met no terminal and failed.
    assert code == ExitCode.OK, report
    after = installed(lab, ALL_MODE_ADDRESS)
    shown = lab.ssh(
        ALL_MODE_ADDRESS,
        f"sudo cat {CONF_FILE}; echo ---; sudo cat {CONF_FILE}.dpkg-dist; echo ---;"
        f" cat {CONFIGURED_RECORD}",
    )
    assert shown.returncode == 0, shown.stderr
    kept, shipped, configured = shown.stdout.split("---\n")
    # The host's file stays; the package's new one waits beside it for a person to merge.
    assert {
        "version": after.get("webmg-test-conf"),
        "recommended package installed": "webmg-test-extra" in after,
        "configuration file": kept,
        "new configuration file beside it": shipped,
        "configured": configured,
    } == {
        "version": "1.1",
        "recommended package installed": False,
        "configuration file": HOST_SETTINGS,
        "new configuration file beside it": new.files[CONF_FILE.lstrip("/")],
        "configured": "version=1.1 frontend=noninteractive\n",
    }
    evidence = finished(lab, report["run_id"])["evidence"]["hosts"][ALL_MODE_HOST]
    changed = {item["name"]: (item["old"], item["new"]) for item in evidence["packages"]}
    assert changed["webmg-test-conf"] == ("1.0", "1.1")
    assert "webmg-test-extra" not in changed


def test_apt_waits_for_a_dpkg_lock_another_process_holds(
    lab: Lab, changed_hosts: list[str], tmp_path: Path
) -> None:
    # A lock held before the run makes preflight exclude the host: here another process
    # takes it once the run is past preflight and reads the host's state, before apt runs.
    changed_hosts.append(ALL_MODE_HOST)
    assert installed(lab, ALL_MODE_ADDRESS)["webmg-demo-tools"] == "1.0"
    lab.diagnosed(ALL_MODE_CLIENT)
    with (
        edited_contract(lab.inventories, ALL_MODE_CLIENT, always_open),
        dpkg_lock_taken_during_the_update(lab, ALL_MODE_ADDRESS) as lock,
        running_update(lab, ALL_MODE_CLIENT, (ALL_MODE_HOST,), tmp_path) as run,
    ):
        lock.wait_held(300)

        def apt_get_install_runs() -> bool:
            assert run.poll() is None, "the update ended while the dpkg lock was held"
            # The brackets keep this command's own shell from matching itself.
            found = lab.ssh(ALL_MODE_ADDRESS, "pgrep -f '[a]pt-get .*install '")
            return found.returncode == 0

        assert wait_until(apt_get_install_runs, 300), "apt-get install never started"
        # apt-get tries the lock as soon as it starts, and fails at once unless it waits:
        # looked at again, it is still there, the run goes on and nothing was installed.
        assert installed(lab, ALL_MODE_ADDRESS)["webmg-demo-tools"] == "1.0"
        assert apt_get_install_runs(), "apt-get install ended while the dpkg lock was held"
        lock.release()
        run.wait(timeout=300)
    report = report_of(tmp_path)
    assert run.returncode == ExitCode.OK, report
    assert installed(lab, ALL_MODE_ADDRESS)["webmg-demo-tools"] == "1.1"
    evidence = finished(lab, report["run_id"])["evidence"]["hosts"][ALL_MODE_HOST]
    assert evidence["outcome"] == "updated"
    assert evidence["install_error"] is None
