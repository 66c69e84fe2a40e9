from __future__ import annotations

import hashlib
import hmac
import json
import secrets

SECRET_KEY_PREFIX = "fbk_sk_"
PUBLISHABLE_KEY_PREFIX = "fbk_pk_"
DISPLAY_PREFIX_LENGTH = 12


def generate_key(prefix: str) -> str:
    """256 bits of randomness behind a recognisable prefix (secret scanners match on it)."""
    return prefix + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """Keys carry 256 random bits, so a fast, unsalted SHA-256 cannot be brute-forced and
    lets us find a key by its hash in one indexed lookup. Only the hash is stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_hash(value: object) -> str:
    """Hash of a JSON-able value that ignores key order and whitespace."""
    return fingerprint(
        json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    )
