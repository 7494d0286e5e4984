"""The README's independent verifier checks an exported ledger against a signed checkpoint.

The script is read from the README itself (the ``python`` block of "Signed
checkpoints"), written to a file and run as a client would: a separate Python
in isolated mode, standard library plus ``rfc8785``, no webmg_ops. It must pass
on an export of a ledger holding entries of both formats and refuse a tampered
checkpoint, another key, an altered entry, a cut and a rewritten ledger.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.ledger import legacy_ledger, sqlite_url, tamper

from webmg_ops.ledger import open_ledger

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Signed checkpoints"
TIMEOUT_SECONDS = 60
#: Payloads where JSON writers differ: whole floats, exponents, non-BMP keys, escapes.
AWKWARD_PAYLOADS: list[dict[str, Any]] = [
    {"duration_s": 12.0, "bytes": 1e21, "ratio": 1e-7, "tiny": 5e-324},
    {"\U0001f600": "emoji key", "\ue000": "private use", "text": 'é "quoted"\n\t\u007f'},
    {"nested": [{"b": 1, "a": [None, True, False, -0.0]}], "big": 2**53 - 1},
]


def verifier_source() -> str:
    """Return the verifier script: the python block of the README's section."""
    text = README.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    (block,) = re.findall(r"```python\n(.*?)```", text[start:end], re.S)
    return str(block)


def test_the_verifier_imports_nothing_but_the_standard_library_and_rfc8785() -> None:
    tree = ast.parse(verifier_source())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
        )
    }
    assert imported - set(sys.stdlib_module_names) == {"rfc8785"}


Verify = Callable[[Path, Path, str], subprocess.CompletedProcess[str]]


@pytest.fixture
def verify(tmp_path: Path) -> Verify:
    """Return a function running the README's script on an export, a checkpoint and a key."""
    script = tmp_path / "verify_ledger.py"
    script.write_text(verifier_source())

    def run_script(export: Path, checkpoint: Path, key: str) -> subprocess.CompletedProcess[str]:
        # -I: isolated, as on a client's machine: no PYTHONPATH, no webmg_ops on the path.
        return subprocess.run(
            [sys.executable, "-I", str(script), str(export), str(checkpoint), key],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
            cwd=tmp_path,
        )

    return run_script


def cli(var_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``webmg-ops ARGS`` on the ledger of VAR_DIR in a separate process."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "webmg_ops.cli.main",
            "--ledger",
            sqlite_url(var_dir / "ledger.db"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "WEBMG_VAR": str(var_dir),
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        },
    )


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Return (var folder, signed checkpoint, public key file): a ledger of 3 entries of
    format 1 and 3 of format 2, checkpointed at 5 entries, then grown by one."""
    var_dir = tmp_path / "var"
    var_dir.mkdir(mode=0o700)
    db_file = var_dir / "ledger.db"
    legacy_ledger(db_file, 3)
    with open_ledger(sqlite_url(db_file)) as ledger:
        for payload in AWKWARD_PAYLOADS[:2]:
            ledger.append("note", "alpenhof", payload, actor="Ana Müller")
    made = cli(var_dir, "ledger", "keygen", "--json")
    assert made.returncode == 0, made.stderr
    written = cli(var_dir, "ledger", "checkpoint", "--sign", "--json")
    assert written.returncode == 0, written.stderr
    with open_ledger(sqlite_url(db_file)) as ledger:
        ledger.append("note", None, AWKWARD_PAYLOADS[2], actor="ops")
    return (
        var_dir,
        Path(json.loads(written.stdout)["file"]),
        Path(json.loads(made.stdout)["public_key_file"]),
    )


def export(var_dir: Path) -> Path:
    """Export the ledger of VAR_DIR as JSON Lines and return the file."""
    path = var_dir / "ledger.jsonl"
    done = cli(var_dir, "ledger", "export", "--format", "jsonl", "--output", str(path))
    assert done.returncode == 0, done.stderr
    return path


def test_the_readme_verifier_accepts_the_export_and_its_signed_checkpoint(
    signed: tuple[Path, Path, Path], verify: Verify
) -> None:
    var_dir, checkpoint, public = signed
    path = export(var_dir)
    assert [json.loads(line)["format"] for line in path.read_text().splitlines()] == [
        1,
        1,
        1,
        2,
        2,
        2,
    ]
    for key in (str(public), public.read_text().strip()):
        done = verify(path, checkpoint, key)
        assert done.returncode == 0, done.stderr
        assert "VERIFIED: 6 entries" in done.stdout
        assert "checkpoint of 5 signed by webmg-ops-agency" in done.stdout


def test_the_readme_verifier_refuses_a_tampered_checkpoint_or_another_key(
    signed: tuple[Path, Path, Path], verify: Verify, tmp_path: Path
) -> None:
    var_dir, checkpoint, public = signed
    path = export(var_dir)
    original = checkpoint.read_text()
    checkpoint.write_text(original.replace("\n5\n", "\n4\n", 1))
    done = verify(path, checkpoint, str(public))
    assert done.returncode == 1 and "no valid signature" in done.stderr
    checkpoint.write_text(original)
    other = cli(var_dir, "ledger", "keygen", "--key", str(tmp_path / "other.key"), "--json")
    assert other.returncode == 0, other.stderr
    done = verify(path, checkpoint, json.loads(other.stdout)["public_key"])
    assert done.returncode == 1 and "no valid signature" in done.stderr


def test_the_readme_verifier_refuses_an_altered_entry(
    signed: tuple[Path, Path, Path], verify: Verify
) -> None:
    var_dir, checkpoint, public = signed
    path = export(var_dir)
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace("private use", "private usE")
    path.write_text("\n".join(lines) + "\n")
    done = verify(path, checkpoint, str(public))
    assert done.returncode == 1
    assert "entry 5 does not hash" in done.stderr


def test_the_readme_verifier_refuses_a_cut_ledger(
    signed: tuple[Path, Path, Path], verify: Verify
) -> None:
    var_dir, checkpoint, public = signed
    tamper(var_dir / "ledger.db", ("DELETE FROM ledger_entries WHERE seq > 4", ()))
    done = verify(export(var_dir), checkpoint, str(public))
    assert done.returncode == 1
    assert "it was cut" in done.stderr


def test_the_readme_verifier_refuses_a_rewritten_and_rehashed_ledger(
    signed: tuple[Path, Path, Path], verify: Verify
) -> None:
    """Entries 4 on removed and others appended: the chain is whole, the head is not the one
    signed."""
    var_dir, checkpoint, public = signed
    tamper(var_dir / "ledger.db", ("DELETE FROM ledger_entries WHERE seq > 3", ()))
    with open_ledger(sqlite_url(var_dir / "ledger.db")) as ledger:
        for n in range(3):
            ledger.append("note", "alpenhof", {"n": n}, actor="mallory")
    done = verify(export(var_dir), checkpoint, str(public))
    assert done.returncode == 1
    assert "history was rewritten" in done.stderr
