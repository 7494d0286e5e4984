"""Ledger checkpoints as C2SP signed notes, signed with the agency's Ed25519 key.

A checkpoint names a point of the hash chain: how many entries the ledger
held and the hash of the last one. It is written in the C2SP formats
``tlog-checkpoint`` and ``signed-note`` (https://github.com/C2SP/C2SP)::

    <origin>
    <entry count>
    <base64 of the head hash's 32 bytes>

    — <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>

One adaptation, said plainly: a transparency log's third line is the root of
a Merkle tree; ours is the head of the ledger's hash chain (the hash of entry
``count``, or 32 zero bytes for an empty ledger). It proves the same thing for
a verifier holding the ledger: the history up to that entry is the one that
was signed. It gives no inclusion proofs; a verifier recomputes the chain.

The signature covers the body's bytes (the three lines, each ending in a
newline). The key id is the first 4 bytes of SHA-256 of ``name || 0x0A ||
0x01 || public key`` (0x01: Ed25519), as the signed-note spec says. Keys are
written in the encodings of Go's ``golang.org/x/mod/sumdb/note``: a verifier
key is ``<name>+<hex key id>+<base64(0x01 || public key)>``, a signer key
``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || private seed)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from webmg_ops.errors import BadInput, EnvironmentProblem
from webmg_ops.ledger.canonical import GENESIS_HASH
from webmg_ops.ledger.records import Checkpoint

ED25519 = 0x01
"""The signed-note signature type of Ed25519."""
SIGNATURE_PREFIX = "\u2014 "
"""A signature line starts with an em dash and a space."""
SIGNER_PREFIX = "PRIVATE+KEY+"
DEFAULT_ORIGIN = "webmg-ops/ledger"
"""The checkpoint's first line when none is set: it names the log the checkpoint is of."""
ORIGIN_VARIABLE = "WEBMG_LEDGER_ORIGIN"
MAX_NOTE_BYTES = 64 * 1024
"""A checkpoint is a few hundred bytes; a larger file is not one."""

_NAME = re.compile(r"[^\s+]+")
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise BadInput(f"{what} is not base64") from None


def validate_name(name: str, what: str = "key name") -> str:
    """Given a key name or an origin, return it.

    Raise BadInput if it is empty, holds a space or a ``+`` (the signed-note
    rules), or a character that is not printable.
    """
    if not (isinstance(name, str) and _NAME.fullmatch(name) and name.isprintable()):
        raise BadInput(f"{what} {name!r} must be printable, without spaces or '+'")
    return name


def key_id(name: str, public_key: bytes) -> bytes:
    """Given a key name and an Ed25519 public key's 32 bytes, return its 4-byte key id."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A public key that checks checkpoint signatures: its name and its 32 bytes."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        """The 4-byte key id that signature lines carry."""
        return key_id(self.name, self.public_key)

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes([ED25519]) + self.public_key)}"


@dataclass(frozen=True)
class SigningKey:
    """The agency's private key: its name and its Ed25519 key. Never printed or logged."""

    name: str
    private_key: Ed25519PrivateKey

    def __repr__(self) -> str:
        return f"SigningKey(name={self.name!r}, private_key=<hidden>)"

    @property
    def verifier(self) -> VerifierKey:
        """The public half, as a verifier key."""
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return VerifierKey(self.name, raw)

    def encode(self) -> str:
        """Return the signer key text (the secret): what the key file holds."""
        seed = self.private_key.private_bytes_raw()
        encoded = _b64(bytes([ED25519]) + seed)
        return f"{SIGNER_PREFIX}{self.name}+{self.verifier.key_id.hex()}+{encoded}"


def generate_signing_key(name: str) -> SigningKey:
    """Given a key name, return a new Ed25519 signing key. Raise BadInput for a bad name."""
    return SigningKey(validate_name(name), Ed25519PrivateKey.generate())


def _split_key(text: str, what: str) -> tuple[str, bytes, bytes]:
    parts = text.strip().split("+", 2)  # base64 may hold "+" too
    if len(parts) != 3:
        raise BadInput(f"{what} must be NAME+KEYID+BASE64 (as 'webmg-ops ledger keygen' writes)")
    name, hex_id, encoded = parts
    validate_name(name)
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise BadInput(f"{what}: key id {hex_id!r} is not 8 lowercase hex digits")
    raw = _unb64(encoded, what)
    if len(raw) != 33 or raw[0] != ED25519:
        raise BadInput(f"{what} is not an Ed25519 key (type byte 0x01 and 32 bytes)")
    return name, bytes.fromhex(hex_id), raw[1:]


def parse_verifier_key(text: str) -> VerifierKey:
    """Given verifier key text ``NAME+KEYID+BASE64``, return the key.

    Raise BadInput if it is malformed or its key id does not match its name and key.
    """
    name, given_id, public = _split_key(text, "public key")
    key = VerifierKey(name, public)
    if key.key_id != given_id:
        raise BadInput(f"public key {name}: key id {given_id.hex()} does not match the key")
    return key


def parse_signing_key(text: str) -> SigningKey:
    """Given signer key text ``PRIVATE+KEY+NAME+KEYID+BASE64``, return the key.

    Raise BadInput if it is malformed or its key id does not match (the
    message never quotes the text: it is a secret).
    """
    if not text.startswith(SIGNER_PREFIX):
        raise BadInput("the signing key file does not hold a PRIVATE+KEY+... signing key")
    name, given_id, seed = _split_key(text.removeprefix(SIGNER_PREFIX), "signing key")
    key = SigningKey(name, Ed25519PrivateKey.from_private_bytes(seed))
    if key.verifier.key_id != given_id:
        raise BadInput(f"signing key {name}: key id {given_id.hex()} does not match the key")
    return key


def default_key_path(var_dir: Path) -> Path:
    """Given the var folder, return where the agency's signing key is kept by default.

    ``WEBMG_SIGNING_KEY`` names another file. The var folder is private
    (0700) and never in the repository.
    """
    given = os.environ.get("WEBMG_SIGNING_KEY")
    return Path(given) if given else var_dir / "keys" / "ledger-signing.key"


def public_key_path(key_path: Path) -> Path:
    """Given the signing key's file, return the file of its public half (``.pub`` added)."""
    return key_path.with_name(key_path.name + ".pub")


def write_signing_key(path: Path, key: SigningKey) -> Path:
    """Given a path and a new key, write the key (0600, folder 0700) and its public half.

    Return the public key's file. Raise BadInput if a key file is already
    there (a signing key is never replaced by accident), EnvironmentProblem
    if the files cannot be written.
    """
    public_path = public_key_path(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.parent.stat().st_mode & 0o077:
            path.parent.chmod(0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BadInput(
            f"{path} already holds a signing key: it is never replaced; move it away "
            "first if you really mean to change the agency's key"
        ) from None
    except OSError as error:
        raise EnvironmentProblem(f"cannot write {path}: {error.strerror or error}") from None
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(key.encode() + "\n")
        _write_private_text(public_path, f"{key.verifier}\n")
    except OSError as error:
        path.unlink(missing_ok=True)
        raise EnvironmentProblem(f"cannot write {path}: {error.strerror or error}") from None
    return public_path


def _write_private_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    temporary.replace(path)


def read_signing_key(path: Path) -> SigningKey:
    """Given the key file, return the signing key.

    Raise BadInput if it is missing, open to others (group or world may not
    read a private key) or malformed, EnvironmentProblem if it cannot be read.
    """
    try:
        info = path.stat()
        if info.st_mode & 0o077:
            raise BadInput(
                f"signing key {path} is readable by others (mode {info.st_mode & 0o777:o}): "
                "make it 0600"
            )
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise BadInput(
            f"no signing key at {path}: create one with 'webmg-ops ledger keygen'"
        ) from None
    except UnicodeDecodeError:
        raise BadInput(f"{path} does not hold a signing key") from None
    except OSError as error:
        raise EnvironmentProblem(f"cannot read {path}: {error.strerror or error}") from None
    return parse_signing_key(text.strip())


def ensure_signing_key(path: Path, name: str) -> VerifierKey:
    """Given a key file and a name, return its public key, creating the key if it is missing.

    Raise BadInput if the file holds no valid key or is open to others,
    EnvironmentProblem if it cannot be written.
    """
    if not path.exists():
        write_signing_key(path, generate_signing_key(name))
    return read_signing_key(path).verifier


def read_verifier_key(given: str) -> VerifierKey:
    """Given a public key's file (or the key text itself), return the verifier key.

    Raise BadInput if it can be read as neither.
    """
    path = Path(given)
    if path.is_file():
        try:
            if path.stat().st_size > MAX_NOTE_BYTES:
                raise BadInput(f"{given} is too large to be a public key")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise BadInput(f"cannot read public key {given}: {error}") from None
        if text.startswith(SIGNER_PREFIX):
            # Never quoted: it is the secret half.
            raise BadInput(f"{given} is a private signing key: give its public key (.pub)")
        return parse_verifier_key(text.strip())
    if "+" in given and not given.startswith(SIGNER_PREFIX):
        return parse_verifier_key(given)
    raise BadInput(f"--key {given!r} is neither a public key file nor a NAME+KEYID+BASE64 key")


def checkpoint_origin(origin: str | None = None) -> str:
    """Return the origin line: the one given, else ``WEBMG_LEDGER_ORIGIN``, else the default."""
    return validate_name(origin or os.environ.get(ORIGIN_VARIABLE) or DEFAULT_ORIGIN, "origin")


@dataclass(frozen=True)
class Signature:
    """One signature line of a note: key name, key id and the signature's bytes."""

    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class CheckpointNote:
    """A checkpoint note: its origin, the checkpoint, the body signed and its signatures.

    The checkpoint of an empty ledger has seq 0 and the genesis hash.
    """

    origin: str
    checkpoint: Checkpoint
    body: str
    signatures: tuple[Signature, ...] = ()

    @property
    def text(self) -> str:
        """The note as written: the body, then a blank line and the signatures, if any."""
        if not self.signatures:
            return self.body
        lines = "".join(
            f"{SIGNATURE_PREFIX}{item.name} {_b64(item.key_id + item.signature)}\n"
            for item in self.signatures
        )
        return f"{self.body}\n{lines}"


def checkpoint_body(origin: str, checkpoint: Checkpoint | None) -> str:
    """Given the origin and the ledger's head (None: empty), return the checkpoint's body."""
    head = checkpoint if checkpoint is not None else Checkpoint(0, GENESIS_HASH)
    root = _b64(bytes.fromhex(head.hash))
    return f"{validate_name(origin, 'origin')}\n{head.seq}\n{root}\n"


def make_checkpoint(
    origin: str, head: Checkpoint | None, key: SigningKey | None = None
) -> CheckpointNote:
    """Given the origin, the ledger's head (None: empty) and a key, return the checkpoint note.

    With a key the note carries its signature over the body; without, it is
    the body alone. Raise BadInput for a bad origin.
    """
    body = checkpoint_body(origin, head)
    checkpoint = head if head is not None else Checkpoint(0, GENESIS_HASH)
    signatures: tuple[Signature, ...] = ()
    if key is not None:
        signature = key.private_key.sign(body.encode())
        signatures = (Signature(key.name, key.verifier.key_id, signature),)
    return CheckpointNote(origin, checkpoint, body, signatures)


def _parse_signature(line: str) -> Signature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise BadInput(f"signature line {line!r} does not start with '\u2014 '")
    parts = line.removeprefix(SIGNATURE_PREFIX).split(" ")
    if len(parts) != 2:
        raise BadInput(f"signature line {line!r} is not '\u2014 NAME BASE64'")
    name, encoded = parts
    validate_name(name)
    raw = _unb64(encoded, f"the signature of {name}")
    if len(raw) < 5:
        raise BadInput(f"the signature of {name} is too short")
    return Signature(name, raw[:4], raw[4:])


def parse_checkpoint_note(text: str) -> CheckpointNote:
    """Given a checkpoint note's text, return it parsed (signatures not checked yet).

    A note is its body (origin, entry count, base64 head hash, then optional
    extension lines), then, when signed, a blank line and one signature line
    per key. Raise BadInput if it is not such a note.
    """
    if "\r" in text or any(ord(char) < 0x20 and char != "\n" for char in text):
        raise BadInput("a checkpoint holds no control characters but newlines")
    if not text.endswith("\n"):
        raise BadInput("a checkpoint ends with a newline")
    split = text.rfind("\n\n")
    if split < 0:
        body, signature_text = text, ""
    else:
        body, signature_text = text[: split + 1], text[split + 2 :]
    lines = body.splitlines()
    if len(lines) < 3 or any(not line for line in lines):
        raise BadInput("a checkpoint's body is three lines: origin, entry count, head hash")
    origin, size, root = lines[:3]
    validate_name(origin, "origin")
    if not _SIZE.fullmatch(size):
        raise BadInput(f"entry count {size!r} is not a number")
    head = _unb64(root, "the head hash")
    if len(head) != 32:
        raise BadInput("the head hash is not 32 bytes")
    if int(size) == 0 and head.hex() != GENESIS_HASH:
        raise BadInput("a checkpoint of an empty ledger names the genesis hash")
    signatures = tuple(_parse_signature(line) for line in signature_text.splitlines())
    if split >= 0 and not signatures:
        raise BadInput("a checkpoint's blank line is followed by its signatures, found none")
    return CheckpointNote(origin, Checkpoint(int(size), head.hex()), body, signatures)


def read_checkpoint_note(path: Path) -> CheckpointNote:
    """Given a checkpoint file, return it parsed. Raise BadInput if unreadable or malformed."""
    try:
        if path.stat().st_size > MAX_NOTE_BYTES:
            raise BadInput(f"{path} is too large to be a checkpoint")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not UTF-8 text: not a checkpoint") from None
    except OSError as error:
        raise BadInput(f"cannot read checkpoint {path}: {error.strerror or error}") from None
    try:
        return parse_checkpoint_note(text)
    except BadInput as error:
        raise BadInput(f"{path} is not a valid checkpoint: {error.message}") from None


def check_signature(note: CheckpointNote, key: VerifierKey) -> str | None:
    """Given a note and the key that should have signed it, return None if it did.

    Otherwise return why not: unsigned, no signature by that key (name and
    key id), or a signature by it that does not verify (the body was changed,
    or it was signed by another key of the same name).
    """
    if not note.signatures:
        return "the checkpoint is not signed"
    mine = [item for item in note.signatures if (item.name, item.key_id) == (key.name, key.key_id)]
    if not mine:
        names = ", ".join(f"{item.name} ({item.key_id.hex()})" for item in note.signatures)
        return f"it is signed by {names}, not by the key {key.name} ({key.key_id.hex()})"
    public = Ed25519PublicKey.from_public_bytes(key.public_key)
    for item in mine:
        try:
            public.verify(item.signature, note.body.encode())
        except InvalidSignature:
            continue
        return None
    return (
        f"the signature of {key.name} does not match the checkpoint's text: "
        "the checkpoint was altered after it was signed"
    )


@dataclass(frozen=True)
class AgencyCheckpoint:
    """A checkpoint note signed with the agency's key where one is kept, and how to check it.

    ``signed_by`` is the key's name (None: unsigned); ``public_key`` the file of its
    public half; ``problem`` why the note is unsigned although a key file is there.
    """

    note: CheckpointNote
    signed_by: str | None
    public_key: Path | None
    problem: str | None = None

    def verify_command(self, note_file: Path) -> str:
        """Given where the note is written, return the command that checks it."""
        command = ["webmg-ops", "ledger", "verify", "--checkpoint", str(note_file)]
        if self.public_key is not None:
            command += ["--key", str(self.public_key)]
        return shlex.join(command)


def agency_checkpoint(
    var_dir: Path, checkpoint: Checkpoint | None, *, strict: bool = True
) -> AgencyCheckpoint:
    """Given the var folder, a checkpoint (None: the empty ledger) and whether a bad key
    is an error, return its note signed with the agency's key (:func:`default_key_path`)
    when that file exists, unsigned when it does not.

    With ``strict`` a key file that cannot be used raises (BadInput, EnvironmentProblem);
    without, the note is unsigned and ``problem`` says why: a run log written after
    its run-finished entry must not fail for a key.
    """
    key_path = default_key_path(var_dir)
    origin = checkpoint_origin()
    if not key_path.exists():
        return AgencyCheckpoint(make_checkpoint(origin, checkpoint), None, None)
    try:
        key = read_signing_key(key_path)
    except (BadInput, EnvironmentProblem) as error:
        if strict:
            raise
        return AgencyCheckpoint(make_checkpoint(origin, checkpoint), None, None, str(error))
    return AgencyCheckpoint(
        make_checkpoint(origin, checkpoint, key), key.name, public_key_path(key_path)
    )
