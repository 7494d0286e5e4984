"""``webmg-ops ledger verify|head|export``: output, exit codes and errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from support.ledger import Runner, read_row, sqlite_url, tamper

from webmg_ops.errors import ExitCode
from webmg_ops.ledger import CSV_COLUMNS, NewEntry, open_ledger


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    """Return a SQLite ledger with three entries for two clients."""
    path = tmp_path / "var" / "ledger.db"
    with open_ledger(sqlite_url(path)) as ledger:
        ledger.append_many(
            [
                NewEntry("run-started", "alpenhof", {"action": "backup"}, actor="ana"),
                NewEntry(
                    "run-finished",
                    "alpenhof",
                    {"action": "backup", "outcome": "succeeded", "note": 'a, "quoted"\nline'},
                    actor="ana",
                ),
                NewEntry("note", None, {"text": "global"}, actor="ana"),
            ]
        )
    return path


def ledger_args(db_file: Path, *args: str) -> list[str]:
    """Given a ledger file and a command, return the full argument list."""
    return ["--ledger", sqlite_url(db_file), "ledger", *args]


def break_payload(db_file: Path, seq: int) -> None:
    """Given a ledger file, change one byte of entry ``seq``'s stored payload."""
    payload = read_row(db_file, seq)["payload"]
    tamper(
        db_file,
        (
            "UPDATE ledger_entries SET payload = ? WHERE seq = ?",
            (payload.replace("a", "e", 1), seq),
        ),
    )


def test_verify_an_intact_ledger(run: Runner, db_file: Path) -> None:
    result = run(*ledger_args(db_file, "verify"))
    assert result.code == ExitCode.OK
    assert "3 entries checked" in result.err
    assert f"3:{read_row(db_file, 3)['hash']}" in result.err
    assert result.out == ""


def test_verify_names_the_entry_whose_payload_changed(run: Runner, db_file: Path) -> None:
    break_payload(db_file, 2)
    result = run(*ledger_args(db_file, "verify"))
    assert result.code == ExitCode.FAILED
    assert "broken at entry 2" in result.err
    assert "altered" in result.err
    assert "Traceback" not in result.err


def test_verify_json(run: Runner, db_file: Path) -> None:
    intact = json.loads(run(*ledger_args(db_file, "verify", "--json")).out)
    assert intact == {
        "ok": True,
        "entries_checked": 3,
        "head": f"3:{read_row(db_file, 3)['hash']}",
        "first_bad_seq": None,
        "reason": None,
        "published_compared": 0,
    }
    break_payload(db_file, 2)
    result = run(*ledger_args(db_file, "verify", "--json"))
    broken = json.loads(result.out)
    assert result.code == ExitCode.FAILED
    assert (broken["ok"], broken["first_bad_seq"], broken["entries_checked"]) == (False, 2, 1)


def test_verify_against_a_checkpoint(run: Runner, db_file: Path) -> None:
    head = run(*ledger_args(db_file, "head")).out.strip()
    assert run(*ledger_args(db_file, "verify", "--checkpoint", head)).code == ExitCode.OK
    tamper(db_file, ("DELETE FROM ledger_entries WHERE seq = 3", ()))
    assert run(*ledger_args(db_file, "verify")).code == ExitCode.OK
    result = run(*ledger_args(db_file, "verify", "--checkpoint", head))
    assert result.code == ExitCode.FAILED
    assert "broken at entry 3" in result.err


def test_a_malformed_checkpoint_is_bad_input(run: Runner, db_file: Path) -> None:
    result = run(*ledger_args(db_file, "verify", "--checkpoint", "3:nothex"))
    assert result.code == ExitCode.BAD_INPUT
    assert result.err.startswith("Error:") and "SEQ:HASH" in result.err


def test_head_prints_seq_and_hash(run: Runner, db_file: Path) -> None:
    result = run(*ledger_args(db_file, "head"))
    assert result.code == ExitCode.OK
    assert result.out == f"3:{read_row(db_file, 3)['hash']}\n"
    document = json.loads(run(*ledger_args(db_file, "head", "--json")).out)
    assert document == {
        "checkpoint": result.out.strip(),
        "seq": 3,
        "hash": read_row(db_file, 3)["hash"],
    }


def test_export_jsonl(run: Runner, db_file: Path) -> None:
    result = run(*ledger_args(db_file, "export", "--format", "jsonl"))
    assert result.code == ExitCode.OK
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3]
    assert set(lines[0]) == {
        "seq",
        "kind",
        "client",
        "at",
        "actor",
        "payload",
        "prev_hash",
        "hash",
        "format",
    }
    assert {line["format"] for line in lines} == {2}  # every new entry is RFC 8785
    assert lines[1]["payload"]["outcome"] == "succeeded"
    assert lines[2]["client"] is None
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    only_client = run(*ledger_args(db_file, "export", "--format", "jsonl", "--client", "alpenhof"))
    assert [json.loads(line)["seq"] for line in only_client.out.splitlines()] == [1, 2]


def test_export_csv(run: Runner, db_file: Path) -> None:
    result = run(*ledger_args(db_file, "export", "--format", "csv"))
    assert result.code == ExitCode.OK
    rows = list(csv.reader(io.StringIO(result.out)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row[0] for row in rows[1:]] == ["1", "2", "3"]
    assert json.loads(rows[2][CSV_COLUMNS.index("payload")])["note"] == 'a, "quoted"\nline'
    assert rows[3][CSV_COLUMNS.index("client")] == ""


def test_export_since_and_to_a_file(run: Runner, db_file: Path, tmp_path: Path) -> None:
    output = tmp_path / "out" / "export.jsonl"
    output.parent.mkdir()
    future = run(
        *ledger_args(db_file, "export", "--format", "jsonl", "--since", "2999-01-01T00:00Z")
    )
    assert future.code == ExitCode.OK and future.out == ""
    result = run(
        *ledger_args(
            db_file,
            "export",
            "--format",
            "jsonl",
            "--since",
            "2000-01-01T00:00:00+02:00",
            "--output",
            str(output),
        )
    )
    assert result.code == ExitCode.OK
    assert result.out == ""
    assert "3 entries" in result.err
    assert len(output.read_text().splitlines()) == 3
    nowhere = tmp_path / "missing-folder" / "export.csv"
    refused = run(*ledger_args(db_file, "export", "--format", "csv", "--output", str(nowhere)))
    assert refused.code == ExitCode.BAD_INPUT
    assert refused.err.startswith("Error: --output")


def test_export_refuses_a_bad_since(run: Runner, db_file: Path) -> None:
    result = run(*ledger_args(db_file, "export", "--format", "csv", "--since", "last tuesday"))
    assert result.code == ExitCode.BAD_INPUT
    assert result.err.startswith("Error: --since")
    assert result.out == ""


@pytest.mark.parametrize(
    "command",
    [["verify"], ["verify", "--json"], ["head"], ["export", "--format", "csv"], ["checkpoint"]],
)
def test_read_commands_on_a_missing_ledger_refuse_and_create_nothing(
    run: Runner, tmp_path: Path, command: list[str]
) -> None:
    db_file = tmp_path / "var" / "ledger.db"
    result = run(*ledger_args(db_file, *command))
    assert result.code == ExitCode.BAD_INPUT, result
    if "--json" in command:
        assert json.loads(result.err)["error"].startswith(f"no ledger yet at {db_file}")
    else:
        assert result.err.startswith(f"Error: no ledger yet at {db_file}")
    assert result.out == ""
    assert not db_file.exists()
    assert not (db_file.parent / "checkpoints").exists()
    assert "Traceback" not in result.err


def test_an_empty_ledger_has_no_head(run: Runner, tmp_path: Path) -> None:
    db_file = tmp_path / "ledger.db"
    with open_ledger(sqlite_url(db_file)):
        pass  # created, as the first command that writes creates it
    result = run(*ledger_args(db_file, "head"))
    assert (result.code, result.out) == (ExitCode.OK, "")
    assert "empty" in result.err
    assert json.loads(run(*ledger_args(db_file, "head", "--json")).out)["checkpoint"] is None
    verified = run(*ledger_args(db_file, "verify", "--json"))
    assert json.loads(verified.out)["entries_checked"] == 0
    assert json.loads(verified.out)["head"] is None  # null, not the text "None"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("bogus://", ExitCode.BAD_INPUT),
        ("mysql://ana:hunter2@db.invalid/ledger", ExitCode.BAD_INPUT),
        ("postgresql+nodriver://ana:hunter2@localhost/ledger", ExitCode.ENVIRONMENT),
        ("sqlite:///{tmp}", ExitCode.ENVIRONMENT),
    ],
)
def test_a_bad_ledger_url_is_bad_input_an_unusable_ledger_an_environment_problem(
    run: Runner, tmp_path: Path, url: str, code: ExitCode
) -> None:
    result = run("--ledger", url.format(tmp=tmp_path), "ledger", "verify")
    assert result.code == code, result
    assert result.err.startswith("Error:")
    assert "Traceback" not in result.err
    assert "hunter2" not in result.err
    as_json = run("--ledger", url.format(tmp=tmp_path), "ledger", "head", "--json")
    assert json.loads(as_json.err)["exit_code"] == code


def test_the_ledger_url_comes_from_the_environment(
    run: Runner, db_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBMG_LEDGER_URL", sqlite_url(db_file))
    assert run("ledger", "head").out.startswith("3:")


def test_every_ledger_command_and_option_has_help() -> None:
    from webmg_ops.cli.ledger import ledger_group

    assert ledger_group.help
    for name, command in ledger_group.commands.items():
        assert command.help, name
        for parameter in command.params:
            assert getattr(parameter, "help", None), f"{name} {parameter.name}"
