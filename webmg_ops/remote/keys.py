"""SSH key pairs the controller makes: ed25519 only, the private half its owner's alone.

A client's key (``inventories/<client>/ssh/id_ed25519``, made by ``client
new``) and the rehearsal lab's keys are generated here, with the
cryptography library: no ``ssh-keygen`` process, no passphrase (the engine
offers the key to OpenSSH unattended; the file's mode protects it).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def write_private(path: Path, content: bytes | str, mode: int = 0o600) -> None:
    """Given a path and content, write it readable by its owner only (atomically).

    The parent folder is made 0700 when missing. A reader never sees a half-written
    file: the content goes to ``<name>.partial`` first, then is renamed over ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content.encode() if isinstance(content, str) else content)
    partial.rename(path)


def generate_key_pair(private_path: Path, comment: str) -> str:
    """Given where to keep a private key and the public key's comment, generate an
    ed25519 pair and return the public line (``ssh-ed25519 BASE64 COMMENT``).

    The private key is written in OpenSSH format, 0600, unencrypted; the public line
    goes beside it as ``<name>.pub``. An existing pair at that path is replaced.
    """
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = f"{public.decode()} {comment}"
    write_private(private_path, private)
    private_path.with_name(private_path.name + ".pub").write_text(line + "\n")
    return line


def public_key_text(private_path: Path) -> str:
    """Given an unencrypted private key in OpenSSH format, return its public half as
    ``type base64`` (an ``authorized_keys`` line without comment).

    Derived from the private key itself, so that the line is always the key the
    engine offers. Raise ValueError or TypeError if the file is not such a key,
    OSError if it cannot be read.
    """
    key = serialization.load_ssh_private_key(private_path.read_bytes(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return public.decode()
