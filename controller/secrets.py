"""Secret values: encrypted at rest, digested for the log, written out for the containers.

The event log only ever sees a keyed digest (HMAC-SHA256) of a value, so a log, a backup or
`GET /system/events` leaks nothing, and a guessable value cannot be confirmed offline without
the key. Values live in their own SQLite table, each sealed with AES-256-GCM under a key
created on first start (file mode 0600); the table keeps one row per (namespace, name,
digest), so the value that any replica was rendered with stays readable until it is pruned.
For the containers each value is written to a file under a 0700 directory (by default on
/run, a tmpfs) and bind-mounted read-only at /var/openfaas/secrets/<name>.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets as random
import sqlite3
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MOUNT_DIR = "/var/openfaas/secrets"


def _private_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class SecretVault:
    def __init__(self, db_path: str | Path, key_path: str | Path) -> None:
        key_file = Path(key_path)
        if not key_file.exists():
            _private_file(key_file, random.token_bytes(32))
        key = key_file.read_bytes()
        if len(key) != 32:
            raise ValueError(f"{key_file}: expected a 32-byte key, found {len(key)} bytes")
        self._aead = AESGCM(key)
        self._mac_key = hashlib.sha256(b"docker-faas secret digest\0" + key).digest()
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS secret_values (namespace TEXT, name TEXT, digest TEXT,"
            " nonce BLOB, sealed BLOB, PRIMARY KEY (namespace, name, digest))"
        )
        os.chmod(db_path, 0o600)

    def digest(self, namespace: str, name: str, value: bytes) -> str:
        """Keyed digest of a value, bound to its secret's identity."""
        message = f"{namespace}/{name}\0".encode() + value
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()

    def put(self, namespace: str, name: str, value: bytes) -> str:
        """Store `value` sealed; return its digest (what the log records)."""
        digest = self.digest(namespace, name, value)
        nonce = random.token_bytes(12)
        sealed = self._aead.encrypt(nonce, value, f"{namespace}/{name}/{digest}".encode())
        self._db.execute(
            "INSERT OR REPLACE INTO secret_values VALUES (?, ?, ?, ?, ?)",
            (namespace, name, digest, nonce, sealed),
        )
        return digest

    def get(self, namespace: str, name: str, digest: str) -> bytes:
        row = self._db.execute(
            "SELECT nonce, sealed FROM secret_values WHERE namespace=? AND name=? AND digest=?",
            (namespace, name, digest),
        ).fetchone()
        if row is None:
            raise KeyError(f"no stored value for secret {namespace}/{name} ({digest[:12]})")
        value: bytes = self._aead.decrypt(row[0], row[1], f"{namespace}/{name}/{digest}".encode())
        return value

    def prune(self, namespace: str, name: str, keep: set[str], *, prefix: bool = False) -> None:
        """Forget every stored value of a secret except the digests in `keep` (or, with
        `prefix`, those starting with one of them: host files carry a digest prefix)."""
        rows = self._db.execute(
            "SELECT digest FROM secret_values WHERE namespace=? AND name=?", (namespace, name)
        ).fetchall()
        for (digest,) in rows:
            kept = any(digest.startswith(k) for k in keep) if prefix else digest in keep
            if not kept:
                self._db.execute(
                    "DELETE FROM secret_values WHERE namespace=? AND name=? AND digest=?",
                    (namespace, name, digest),
                )

    def materialize(self, root: Path, namespace: str, name: str, digest: str) -> Path:
        """Write the value to `<root>/<ns>/<name>/<digest>` (dirs 0700, file 0444) once."""
        path = root / namespace / name / digest[:32]
        if path.exists():
            return path
        for directory in (root, root / namespace, root / namespace / name):
            directory.mkdir(mode=0o700, exist_ok=True)
            os.chmod(directory, 0o700)
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
        with os.fdopen(fd, "wb") as handle:
            handle.write(self.get(namespace, name, digest))
        os.replace(temporary, path)
        return path

    def close(self) -> None:
        self._db.close()
