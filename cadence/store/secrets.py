"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with one key per installation.

The key comes from ``CADENCE_SECRET_KEY`` (a Fernet key, or any passphrase, which is stretched
with HKDF) or from ``$CADENCE_HOME/secret.key``, generated on first use with 0600 permissions.
Decrypted values live only in memory and are never logged (``Secret.__repr__`` hides them).
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cadence.errors import ConfigError

KEY_FILE_NAME = "secret.key"


@dataclass(frozen=True)
class Secret:
    """A decrypted secret that does not show itself in logs or tracebacks."""

    value: str

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


def _fernet_key_from(text: str) -> bytes:
    raw = text.strip().encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except (binascii.Error, ValueError):
        pass
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"cadence-secret-key", info=b"fernet"
    ).derive(raw)
    return base64.urlsafe_b64encode(derived)


def load_or_create_key_file(path: Path) -> bytes:
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(
                f"the key file {path} is readable by other users (mode {mode:o})",
                code="secret_key_permissions",
                hint=f"run: chmod 600 {path}",
            )
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: two processes starting at once never overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    return key


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, secret_key: str | None, home: Path) -> SecretBox:
        if secret_key:
            return cls(_fernet_key_from(secret_key))
        return cls(load_or_create_key_file(home / KEY_FILE_NAME))

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> Secret:
        try:
            return Secret(self._fernet.decrypt(token).decode())
        except InvalidToken:
            raise ConfigError(
                "a stored secret cannot be decrypted with this installation's key",
                code="secret_key_mismatch",
                hint="set CADENCE_SECRET_KEY (or restore secret.key) to the key that stored it",
            ) from None
