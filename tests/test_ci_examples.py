"""The example CI files for scheduled restore drills: they parse, lint, and their scripts work.

The shell steps that handle the vault password and gather the reports are
run here with bash against a fake runner environment, so that a typo in
them is found before the first Monday night.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
GITHUB = REPO / ".github" / "workflows" / "restore-drills.yml"
GITLAB = REPO / "ci" / "gitlab-ci.restore-drills.yml"
VAULT_CANARY = "vault-canary-password-3e1d"


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def github_steps() -> list[dict[str, Any]]:
    return load(GITHUB)["jobs"]["drills"]["steps"]


def step(name: str) -> dict[str, Any]:
    return next(item for item in github_steps() if item.get("name", "").startswith(name))


def gitlab_job() -> dict[str, Any]:
    return load(GITLAB)["restore-drills"]


def make_runs(var_dir: Path, names: list[str]) -> None:
    for name in names:
        run = var_dir / "runs" / name
        (run / "ansible").mkdir(parents=True)
        (run / "run-log.md").write_text("# run log\n")
        (run / "drill-report.json").write_text("{}\n")
        (run / "ansible" / "ansible-output.masked.txt").write_text("not kept\n")


def test_both_files_pass_the_repository_yamllint() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "yamllint",
            "-c",
            str(REPO / ".yamllint"),
            "-s",
            str(GITHUB),
            str(GITLAB),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_github_workflow_runs_drills_weekly_and_keeps_reports() -> None:
    workflow = load(GITHUB)
    triggers = workflow["on"]
    assert triggers["schedule"][0]["cron"].split()[-1] == "1"  # weekly, on Mondays
    assert "workflow_dispatch" in triggers
    job = workflow["jobs"]["drills"]
    assert "self-hosted" in job["runs-on"] and "webmg-ops" in job["runs-on"]
    runs = [item.get("run", "") for item in job["steps"]]
    assert any(line.startswith("make setup") for line in runs)
    assert any(line.startswith("make drills-due RUN=1") for line in runs)
    upload = next(item for item in job["steps"] if "upload-artifact" in item.get("uses", ""))
    assert upload["if"] == "always()"
    assert upload["with"]["retention-days"] == 90
    assert "drill-reports/runs/**/drill*" in upload["with"]["path"]


def test_github_secrets_reach_scripts_only_through_the_environment() -> None:
    for item in github_steps():
        assert "secrets." not in item.get("run", ""), item["name"]
    assert (
        "secrets.WEBMG_VAULT_PASSWORD"
        in step("Write the vault password")["env"]["WEBMG_VAULT_PASSWORD"]
    )


def test_drill_jobs_get_only_the_environments_secrets_and_the_ledger_writer() -> None:
    job = load(GITHUB)["jobs"]["drills"]
    assert job["environment"] == "restore-drills"
    # Secrets reach only the steps that use them: the ledger's URL the drill step alone.
    holders = {item["name"]: set(item.get("env", {})) for item in job["steps"]}
    drill = "Run the restore drills that are due"
    assert holders[drill] == {"WEBMG_LEDGER_URL"}
    assert "secrets.WEBMG_LEDGER_URL" in step(drill)["env"]["WEBMG_LEDGER_URL"]
    assert [name for name, keys in holders.items() if "WEBMG_VAULT_PASSWORD" in keys] == [
        "Write the vault password file"
    ]
    assert not any("secrets." in str(value) for value in job.get("env", {}).values())
    assert gitlab_job()["environment"]["name"] == "restore-drills"
    for text in (GITHUB.read_text(), GITLAB.read_text()):
        assert "ledger setup-roles" in text and "no become password" in text


def test_github_vault_password_file_is_private(tmp_path: Path) -> None:
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    github_env = tmp_path / "github-env"
    environment = {
        "PATH": os.environ["PATH"],
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_ENV": str(github_env),
        "WEBMG_VAULT_PASSWORD": VAULT_CANARY,
        "REPORTS_DIR": str(tmp_path / "drill-reports"),
        "WEBMG_VAR": str(tmp_path / "var"),
    }
    script = step("Write the vault password")["run"]
    subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=environment, check=True)

    name, _, value = github_env.read_text().strip().partition("=")
    assert name == "WEBMG_VAULT_PASSWORD_FILE"
    password_file = Path(value)
    assert password_file.read_text() == f"{VAULT_CANARY}\n"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert VAULT_CANARY not in github_env.read_text()


def test_github_gathers_only_this_jobs_runs(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    reports = tmp_path / "drill-reports"
    make_runs(var_dir, ["20261101T030000Z-alpenhof-drill-old000"])
    reports.mkdir()
    (reports / ".started").touch()
    earlier = time.time() - 3600
    os.utime(var_dir / "runs" / "20261101T030000Z-alpenhof-drill-old000", (earlier, earlier))
    make_runs(
        var_dir, ["20261130T031700Z-alpenhof-drill-new000", "20261130T031800Z-alpenhof-update-new1"]
    )
    later = time.time() + 5
    for run in (var_dir / "runs").glob("20261130*"):
        os.utime(run, (later, later))
    environment = {
        "PATH": os.environ["PATH"],
        "WEBMG_VAR": str(var_dir),
        "REPORTS_DIR": str(reports),
    }

    script = step("Gather")["run"]
    subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=environment, check=True)

    kept = sorted(
        path.relative_to(reports).as_posix() for path in reports.rglob("*") if path.is_file()
    )
    assert kept == [
        ".started",
        "runs/20261130T031700Z-alpenhof-drill-new000/drill-report.json",
        "runs/20261130T031700Z-alpenhof-drill-new000/run-log.md",
    ]
    # Without any run folder yet, gathering is not an error.
    environment["WEBMG_VAR"] = str(tmp_path / "empty")
    subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=environment, check=True)


def test_gitlab_job_runs_on_schedule_and_keeps_reports() -> None:
    job = gitlab_job()
    assert {"if": '$CI_PIPELINE_SOURCE == "schedule"'} in job["rules"]
    assert "webmg-ops" in job["tags"]
    assert "make setup" in job["script"]
    assert any(line.startswith("make drills-due RUN=1") for line in job["script"])
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["expire_in"] == "90 days"
    assert "drill-reports/runs/" in artifacts["paths"]


@pytest.mark.parametrize("runs", [True, False])
def test_gitlab_scripts_keep_the_password_private_and_gather_runs(
    tmp_path: Path, runs: bool
) -> None:
    job = gitlab_job()
    project = tmp_path / "project"
    project.mkdir()
    var_dir = tmp_path / "var"
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    environment = {
        "PATH": os.environ["PATH"],
        "TMPDIR": str(temporary),
        "CI_JOB_ID": "4242",
        "CI_PROJECT_DIR": str(project),
        "WEBMG_VAULT_PASSWORD": VAULT_CANARY,
        "WEBMG_VAR": str(var_dir),
        "REPORTS_DIR": str(project / "drill-reports"),
    }
    before = "\n".join([*job["before_script"], 'echo "$WEBMG_VAULT_PASSWORD_FILE"'])
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", before],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    password_file = Path(done.stdout.strip())
    assert password_file.parent == temporary
    assert password_file.read_text() == f"{VAULT_CANARY}\n"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    if runs:
        make_runs(var_dir, ["20261130T031700Z-riverton-drill-abc123"])
        later = time.time() + 5
        os.utime(var_dir / "runs" / "20261130T031700Z-riverton-drill-abc123", (later, later))

    for line in job["after_script"]:
        subprocess.run(["bash", "-c", line], env=environment, check=False)

    assert not password_file.exists()
    kept = sorted(path.name for path in (project / "drill-reports").rglob("*") if path.is_file())
    assert kept == ([".started", "drill-report.json", "run-log.md"] if runs else [".started"])
