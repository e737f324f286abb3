"""Secrets at rest: Fernet with key rotation (MultiFernet). Keys come from configuration."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# Far more secrets than a bridge decrypts in a while (signing secrets, tokens); past it
# the memory starts over.
_MAX_READ_SECRETS = 1024


class SecretUnreadable(RuntimeError):
    """A stored secret was encrypted with a key the bridge no longer has."""


class SecretBox:
    """Encrypts with the first key, decrypts with any: add a key in front to rotate."""

    def __init__(self, keys: list[str] | tuple[str, ...]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])
        # Ciphertext -> plaintext of the secrets read lately: a signing secret is read for
        # every delivery, and its decryption was an eighth of an overloaded worker's
        # spooled answer. In this process's memory only, as while it is being used; what
        # is stored stays encrypted. A ciphertext always decrypts to the same plaintext.
        self._read: dict[str, str] = {}

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        found = self._read.get(ciphertext)
        if found is not None:
            return found
        try:
            plaintext = self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SecretUnreadable(
                "a stored secret cannot be decrypted with the configured BRIDGE_ENCRYPTION_KEYS"
            ) from None
        if len(self._read) >= _MAX_READ_SECRETS:
            self._read = {}
        self._read[ciphertext] = plaintext
        return plaintext


def load_or_create_key_file(instance_path: Path, name: str = "encryption.key") -> str:
    """The embedded default: a key kept in the instance folder, made on first start."""
    path = instance_path / name
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode("ascii")
    # Write aside, then link into place: when several workers start at once, exactly one
    # key wins and nobody reads a half-written file.
    temporary = path.with_name(f".{name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, path)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
    finally:
        temporary.unlink(missing_ok=True)
    return key
