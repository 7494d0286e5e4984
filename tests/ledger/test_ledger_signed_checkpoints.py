"""Signed checkpoints: the agency's key, checkpoints as C2SP signed notes, and their check.

Promises proved here: ``ledger keygen`` makes a private Ed25519 key (0600 in a
0700 folder, never replaced, never printed); ``ledger checkpoint --sign``
writes origin, entry count and head hash as a signed note whose signature and
key id are those the C2SP spec defines (checked here with ``cryptography`` and
``hashlib`` directly); ``ledger verify --checkpoint FILE --key PUBKEY`` passes
on the ledger that extends it and refuses a tampered body, another key (exit 1),
a truncated or rewritten ledger (exit 1), an unreadable or malformed file or
key (exit 2).
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from support.ledger import Run, Runner, read_row, sqlite_url, tamper

from webmg_ops.errors import ExitCode
from webmg_ops.ledger import NewEntry, open_ledger

EM_DASH = "\u2014"


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return the var folder the commands use (default key and checkpoint places)."""
    folder = tmp_path / "var"
    monkeypatch.setenv("WEBMG_VAR", str(folder))
    monkeypatch.delenv("WEBMG_SIGNING_KEY", raising=False)
    monkeypatch.delenv("WEBMG_LEDGER_ORIGIN", raising=False)
    return folder


@pytest.fixture
def run(run: Runner, var_dir: Path) -> Runner:
    """Return a function that runs ``webmg-ops --ledger <var>/ledger.db ARGS`` in-process."""

    def with_ledger(*args: str) -> Run:
        return run("--ledger", sqlite_url(var_dir / "ledger.db"), *args)

    return with_ledger


def fill(var_dir: Path, count: int, first: int = 1) -> None:
    """Append ``count`` run entries to the ledger in VAR_DIR."""
    with open_ledger(sqlite_url(var_dir / "ledger.db")) as ledger:
        ledger.append_many(
            NewEntry("run-finished", "alpenhof", {"outcome": "succeeded", "run": n}, actor="ana")
            for n in range(first, first + count)
        )


@dataclass(frozen=True)
class Keys:
    """A key made by ``ledger keygen``: its files and the public key it printed."""

    private: Path
    public: Path
    printed: str


def keygen(run: Runner, *args: str) -> Keys:
    """Run ``ledger keygen --json ARGS`` and return what it made."""
    done = run("ledger", "keygen", "--json", *args)
    assert done.code == ExitCode.OK, done.err
    document = json.loads(done.out)
    return Keys(Path(document["key"]), Path(document["public_key_file"]), document["public_key"])


def checkpoint(run: Runner, *args: str) -> Path:
    """Run ``ledger checkpoint --json ARGS`` and return the file it names."""
    done = run("ledger", "checkpoint", "--json", *args)
    assert done.code == ExitCode.OK, done.err
    return Path(json.loads(done.out)["file"])


def decode_public(printed: str) -> tuple[str, bytes, bytes]:
    """Given NAME+KEYID+BASE64, return the name, key id and 32-byte public key."""
    name, key_id, encoded = printed.split("+", 2)
    raw = base64.b64decode(encoded)
    assert raw[0] == 0x01 and len(raw) == 33  # Ed25519
    return name, bytes.fromhex(key_id), raw[1:]


def test_keygen_writes_a_private_key_and_prints_only_its_public_half(
    run: Runner, var_dir: Path
) -> None:
    """The key goes under var/ by default: 0600 in a 0700 folder, the public key printed."""
    done = run("ledger", "keygen")
    assert done.code == ExitCode.OK, done.err
    private = var_dir / "keys" / "ledger-signing.key"
    public = var_dir / "keys" / "ledger-signing.key.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    printed = done.out.strip()
    assert public.read_text().strip() == printed
    assert str(private) in done.err
    name, key_id, raw = decode_public(printed)
    assert name == "webmg-ops-agency"
    # The key id is the spec's: SHA-256(name || 0x0A || 0x01 || public key)[:4].
    assert key_id == hashlib.sha256(name.encode() + b"\n\x01" + raw).digest()[:4]
    # PRIVATE+KEY+<name>+<key id>+<base64 of the seed>: base64 may itself hold a "+".
    secret = private.read_text().strip().split("+", 4)[4]
    assert len(secret) == 44
    assert secret not in done.out + done.err


def test_keygen_never_replaces_a_key(run: Runner, var_dir: Path) -> None:
    """A second keygen on the same path is exit 2 and leaves the key as it was."""
    keys = keygen(run)
    before = keys.private.read_bytes()
    again = run("ledger", "keygen")
    assert again.code == ExitCode.BAD_INPUT
    assert "already holds a signing key" in again.err
    assert keys.private.read_bytes() == before


def test_keygen_to_a_chosen_path_with_a_chosen_name(run: Runner, tmp_path: Path) -> None:
    keys = keygen(run, "--key", str(tmp_path / "agency" / "k"), "--name", "example.org/agency")
    assert keys.private == tmp_path / "agency" / "k"
    assert keys.public == tmp_path / "agency" / "k.pub"
    assert decode_public(keys.printed)[0] == "example.org/agency"
    assert run("ledger", "keygen", "--name", "two words").code == ExitCode.BAD_INPUT


def test_a_signed_checkpoint_is_a_c2sp_signed_note_of_the_head(run: Runner, var_dir: Path) -> None:
    """Origin, entry count and head hash in base64, blank line, `— name base64(id||sig)`."""
    fill(var_dir, 4)
    keys = keygen(run)
    path = checkpoint(run, "--sign")
    text = path.read_text()
    head_hash = read_row(var_dir / "ledger.db", 4)["hash"]
    body = f"webmg-ops/ledger\n4\n{base64.b64encode(bytes.fromhex(head_hash)).decode()}\n"
    assert text.startswith(body + "\n")
    (line,) = text[len(body) + 1 :].splitlines()
    dash, name, encoded = line.split(" ")
    assert (dash, name) == (EM_DASH, "webmg-ops-agency")
    raw = base64.b64decode(encoded)
    _name, key_id, public = decode_public(keys.printed)
    assert raw[:4] == key_id
    Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], body.encode())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_unsigned_checkpoint_is_the_body_alone(run: Runner, var_dir: Path) -> None:
    fill(var_dir, 2)
    done = run(
        "ledger", "checkpoint", "--output", str(var_dir / "cp.txt"), "--origin", "a.example/l"
    )
    assert done.code == ExitCode.OK, done.err
    assert done.out.strip() == str(var_dir / "cp.txt")
    lines = (var_dir / "cp.txt").read_text().splitlines()
    assert lines[:2] == ["a.example/l", "2"] and len(lines) == 3


def test_the_round_trip_verifies_and_a_longer_ledger_still_extends_it(
    run: Runner, var_dir: Path
) -> None:
    fill(var_dir, 3)
    keys = keygen(run)
    path = checkpoint(run, "--sign")
    fill(var_dir, 2, first=4)  # the ledger grows after the checkpoint: it still extends it
    for key in (str(keys.public), keys.printed):  # the .pub file or the key text
        done = run("ledger", "verify", "--checkpoint", str(path), "--key", key, "--json")
        assert done.code == ExitCode.OK, done.err
        document = json.loads(done.out)
        assert document["ok"] is True and document["entries_checked"] == 5
        assert document["checkpoint"]["seq"] == 3
        assert document["checkpoint"]["signature_ok"] is True


def test_a_tampered_body_is_refused(run: Runner, var_dir: Path) -> None:
    """Any change of the signed text (here the count, then the origin) fails the signature."""
    fill(var_dir, 3)
    keys = keygen(run)
    path = checkpoint(run, "--sign")
    fill(var_dir, 1, first=4)
    text = path.read_text()
    for altered in (text.replace("\n3\n", "\n4\n", 1), text.replace("webmg-ops/", "webmg-op/", 1)):
        assert altered != text
        path.write_text(altered)
        done = run("ledger", "verify", "--checkpoint", str(path), "--key", str(keys.public))
        assert done.code == ExitCode.FAILED, done.err
        assert "signature refused" in done.err
        assert "altered after it was signed" in done.err
        as_json = run(
            "ledger", "verify", "--checkpoint", str(path), "--key", str(keys.public), "--json"
        )
        assert as_json.code == ExitCode.FAILED
        document = json.loads(as_json.out)
        assert document["ok"] is False
        assert document["checkpoint"]["signature_ok"] is False


def test_a_checkpoint_signed_by_another_key_is_refused(
    run: Runner, var_dir: Path, tmp_path: Path
) -> None:
    fill(var_dir, 2)
    keygen(run)
    other = keygen(run, "--key", str(tmp_path / "other.key"), "--name", "someone-else")
    path = checkpoint(run, "--sign")
    done = run("ledger", "verify", "--checkpoint", str(path), "--key", str(other.public))
    assert done.code == ExitCode.FAILED
    assert "not by the key someone-else" in done.err
    # The same name with another key: the key id differs, so it is not that key's signature.
    impostor = keygen(run, "--key", str(tmp_path / "impostor.key"))
    done = run("ledger", "verify", "--checkpoint", str(path), "--key", str(impostor.public))
    assert done.code == ExitCode.FAILED
    assert "not by the key webmg-ops-agency" in done.err


def test_an_unsigned_checkpoint_is_refused_when_a_key_is_given(run: Runner, var_dir: Path) -> None:
    fill(var_dir, 2)
    keys = keygen(run)
    path = checkpoint(run)
    done = run("ledger", "verify", "--checkpoint", str(path), "--key", str(keys.public))
    assert done.code == ExitCode.FAILED
    assert "not signed" in done.err


def test_a_truncated_ledger_no_longer_extends_the_checkpoint(run: Runner, var_dir: Path) -> None:
    fill(var_dir, 5)
    keys = keygen(run)
    path = checkpoint(run, "--sign")
    tamper(var_dir / "ledger.db", ("DELETE FROM ledger_entries WHERE seq > 3", ()))
    plain = run("ledger", "verify")
    assert plain.code == ExitCode.OK  # the chain alone looks intact
    done = run("ledger", "verify", "--checkpoint", str(path), "--key", str(keys.public))
    assert done.code == ExitCode.FAILED
    assert "entries from 4 on were removed" in done.err


def test_a_rewritten_history_no_longer_extends_the_checkpoint(run: Runner, var_dir: Path) -> None:
    """Entries removed and others appended in their place: same count, another head."""
    fill(var_dir, 4)
    keys = keygen(run)
    path = checkpoint(run, "--sign")
    tamper(var_dir / "ledger.db", ("DELETE FROM ledger_entries WHERE seq > 2", ()))
    fill(var_dir, 3, first=100)
    done = run("ledger", "verify", "--checkpoint", str(path), "--key", str(keys.public))
    assert done.code == ExitCode.FAILED
    assert "history up to entry 4 was rewritten" in done.err


@pytest.mark.parametrize(
    "content",
    [
        "",
        "webmg-ops/ledger\n",
        "webmg-ops/ledger\nthree\nAAAA\n",
        "webmg-ops/ledger\n3\nnot base64!\n",
        "webmg-ops/ledger\n3\nAAAA\n",  # not 32 bytes
        "webmg-ops/ledger\n03\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "webmg-ops/ledger\n3\n" + base64.b64encode(bytes(32)).decode() + "\n\nno dash line\n",
        "webmg-ops/ledger\n3\n" + base64.b64encode(bytes(32)).decode() + "\n\n",
        "webmg-ops/ledger\n3\n" + base64.b64encode(bytes(32)).decode(),  # no final newline
    ],
)
def test_a_malformed_checkpoint_file_is_exit_2(
    run: Runner, var_dir: Path, tmp_path: Path, content: str
) -> None:
    fill(var_dir, 3)
    keys = keygen(run)
    path = tmp_path / "bad.txt"
    path.write_text(content)
    done = run("ledger", "verify", "--checkpoint", str(path), "--key", str(keys.public))
    assert done.code == ExitCode.BAD_INPUT, done.err
    assert "not a valid checkpoint" in done.err
    assert "Traceback" not in done.err


def test_an_unreadable_checkpoint_file_is_exit_2(
    run: Runner, var_dir: Path, tmp_path: Path
) -> None:
    fill(var_dir, 1)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    done = run("ledger", "verify", "--checkpoint", str(binary))
    assert done.code == ExitCode.BAD_INPUT
    missing = run("ledger", "verify", "--checkpoint", str(tmp_path / "nowhere.txt"))
    assert missing.code == ExitCode.BAD_INPUT
    assert "none at" in missing.err
    folder = run("ledger", "verify", "--checkpoint", str(tmp_path))
    assert folder.code == ExitCode.BAD_INPUT


@pytest.mark.parametrize(
    "key_text",
    [
        "no-plus-sign-here",
        "name+0011aabb+AAAA",  # not 33 bytes
        "name+zz+" + base64.b64encode(b"\x01" + bytes(32)).decode(),
        "name+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(),  # id does not match
        "name+00000000+" + base64.b64encode(b"\x02" + bytes(32)).decode(),  # not Ed25519
    ],
)
def test_a_malformed_public_key_is_exit_2(
    run: Runner, var_dir: Path, tmp_path: Path, key_text: str
) -> None:
    fill(var_dir, 2)
    keygen(run)
    path = checkpoint(run, "--sign")
    key_file = tmp_path / "bad.pub"
    key_file.write_text(key_text + "\n")
    for given in (key_text, str(key_file)):
        done = run("ledger", "verify", "--checkpoint", str(path), "--key", given)
        assert done.code == ExitCode.BAD_INPUT, (given, done.err)
        assert "Traceback" not in done.err


def test_the_private_key_given_as_the_public_one_is_refused_without_showing_it(
    run: Runner, var_dir: Path
) -> None:
    fill(var_dir, 1)
    keys = keygen(run)
    path = checkpoint(run, "--sign")
    done = run("ledger", "verify", "--checkpoint", str(path), "--key", str(keys.private))
    assert done.code == ExitCode.BAD_INPUT
    assert "private signing key" in done.err
    secret = keys.private.read_text().strip().split("+", 4)[4]
    assert len(secret) == 44
    assert secret not in done.out + done.err


def test_signing_without_a_key_or_with_an_open_key_is_exit_2(run: Runner, var_dir: Path) -> None:
    fill(var_dir, 1)
    missing = run("ledger", "checkpoint", "--sign")
    assert missing.code == ExitCode.BAD_INPUT
    assert "ledger keygen" in missing.err
    keys = keygen(run)
    keys.private.chmod(0o644)
    opened = run("ledger", "checkpoint", "--sign")
    assert opened.code == ExitCode.BAD_INPUT
    assert "readable by others" in opened.err
    assert not (var_dir / "checkpoints").exists()  # nothing written


def test_a_checkpoint_of_an_empty_ledger_holds_for_any_ledger(run: Runner, var_dir: Path) -> None:
    keys = keygen(run)
    fill(var_dir, 0)  # the ledger exists, empty
    path = checkpoint(run, "--sign")
    assert path.read_text().splitlines()[1] == "0"
    fill(var_dir, 2)
    done = run("ledger", "verify", "--checkpoint", str(path), "--key", str(keys.public))
    assert done.code == ExitCode.OK, done.err


def test_key_without_a_checkpoint_file_is_exit_2(run: Runner, var_dir: Path) -> None:
    fill(var_dir, 1)
    keys = keygen(run)
    assert run("ledger", "verify", "--key", str(keys.public)).code == ExitCode.BAD_INPUT
    head = run("ledger", "head").out.strip()
    with_text = run("ledger", "verify", "--checkpoint", head, "--key", str(keys.public))
    assert with_text.code == ExitCode.BAD_INPUT
    assert run("ledger", "verify", "--checkpoint", head).code == ExitCode.OK


def test_a_signature_with_altered_bytes_is_refused(run: Runner, var_dir: Path) -> None:
    """A signature line whose bytes were changed is refused, exit 1, never a traceback."""
    fill(var_dir, 2)
    keys = keygen(run)
    path = checkpoint(run, "--sign")
    body, signature = path.read_text().split("\n\n")
    dash, name, encoded = signature.strip().split(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 1
    path.write_text(f"{body}\n\n{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n")
    done = run("ledger", "verify", "--checkpoint", str(path), "--key", str(keys.public))
    assert done.code == ExitCode.FAILED
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(decode_public(keys.printed)[2]).verify(
            bytes(raw[4:]), (body + "\n").encode()
        )
