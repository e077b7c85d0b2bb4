"""The key directory: the engine's journal-signing key (Ed25519), made by ``watchfloor keys init``.

One directory per engine host (mode 0700), outside every recording folder. Files are named for their purpose so
that later keys (the bus keys) can live beside them:

- ``journal-signing.key``: the private key, PKCS#8 PEM, unencrypted, mode 0600;
- ``journal-signing.pub``: its public key, SubjectPublicKeyInfo PEM.

A key is named by its fingerprint, ``sha256:<hex>`` of the raw 32-byte public key. The site file pins it
(``signing.fingerprint``); ``watchfloor journal verify`` takes the public key from that pin only, never from
the database it checks.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = ["KeyDirError", "JOURNAL_SIGNING_KEY", "JOURNAL_SIGNING_PUB", "FINGERPRINT_PATTERN", "KEY_DIR_ENV",
           "fingerprint", "raw_public", "init_key_dir", "load_journal_signing_key", "read_journal_fingerprint",
           "key_dir_for"]

JOURNAL_SIGNING_KEY = "journal-signing.key"
JOURNAL_SIGNING_PUB = "journal-signing.pub"
FINGERPRINT_PATTERN = r"^sha256:[0-9a-f]{64}$"
KEY_DIR_ENV = "WATCHFLOOR_KEY_DIR"


class KeyDirError(Exception):
    """A key directory or key file that cannot be used (missing, too open, another key than the pinned one)."""


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey | bytes) -> str:
    """``sha256:<64 hex>`` of the raw 32-byte public key."""
    raw = key if isinstance(key, bytes) else raw_public(key)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def init_key_dir(key_dir: str | Path) -> str:
    """Create ``key_dir`` (mode 0700) if needed and a new journal-signing key in it; return its fingerprint.

    Refuses (:class:`KeyDirError`) when the key exists already or the folder is open to group or others."""
    d = Path(key_dir)
    if d.exists():
        if not d.is_dir():
            raise KeyDirError(f"{d} exists and is not a directory")
        _check_private_mode(d, "key directory", "700")
    else:
        d.mkdir(mode=0o700, parents=True)
        d.chmod(0o700)  # mkdir's mode is reduced by the umask only; say it exactly anyway
    key_path = d / JOURNAL_SIGNING_KEY
    if key_path.exists() or (d / JOURNAL_SIGNING_PUB).exists():
        raise KeyDirError(f"{key_path} exists: a key is never overwritten (remove it yourself to make a new one, "
                          "and pin the new fingerprint in the site file)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # O_EXCL: two `keys init` at once cannot both write the key
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
    finally:
        os.close(fd)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (d / JOURNAL_SIGNING_PUB).write_bytes(pub)
    return fingerprint(key.public_key())


def load_journal_signing_key(key_dir: str | Path, *, expected_fingerprint: str | None = None) -> Ed25519PrivateKey:
    """The journal-signing key of ``key_dir``; :class:`KeyDirError` when it is missing, readable by others,
    or not the key with ``expected_fingerprint``."""
    d = Path(key_dir)
    key_path = d / JOURNAL_SIGNING_KEY
    if not key_path.is_file():
        raise KeyDirError(f"no journal-signing key at {key_path} (make one with `watchfloor keys init --dir {d}`)")
    _check_private_mode(d, "key directory", "700")
    _check_private_mode(key_path, "key file", "600")
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise KeyDirError(f"{key_path}: not a readable private key: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyDirError(f"{key_path}: not an Ed25519 key")
    got = fingerprint(key.public_key())
    if expected_fingerprint is not None and got != expected_fingerprint:
        raise KeyDirError(f"{key_path} is the key {got}, but the site file pins signing.fingerprint "
                          f"{expected_fingerprint}: refusing to sign with another key")
    return key


def read_journal_fingerprint(key_dir: str | Path) -> str:
    """The fingerprint of the journal-signing public key in ``key_dir`` (no private key needed)."""
    pub_path = Path(key_dir) / JOURNAL_SIGNING_PUB
    if not pub_path.is_file():
        raise KeyDirError(f"no journal-signing public key at {pub_path}")
    try:
        pub = serialization.load_pem_public_key(pub_path.read_bytes())
    except (ValueError, TypeError) as e:
        raise KeyDirError(f"{pub_path}: not a readable public key: {e}") from None
    if not isinstance(pub, Ed25519PublicKey):
        raise KeyDirError(f"{pub_path}: not an Ed25519 key")
    return fingerprint(pub)


def key_dir_for(configured: str | None) -> Path | None:
    """The key directory to use: ``$WATCHFLOOR_KEY_DIR`` when set, else the site's ``signing.key_dir``."""
    env = os.environ.get(KEY_DIR_ENV)
    chosen = env or configured
    return Path(chosen) if chosen else None


def _check_private_mode(path: Path, what: str, want: str) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyDirError(f"{what} {path} is open to group or others (mode {mode:o}): chmod {want} {path}")
