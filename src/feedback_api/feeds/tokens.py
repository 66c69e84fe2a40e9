"""Public ids and cursors of the feeds: nothing internal shows through.

Pure, on the standard library. Each tenant's feed key is derived from a per-tenant secret
(the feeds service passes the integrity salt, which never leaves the database) with a label
of its own, so this use can never be confused with the secret's other one.

- A public id is `HMAC(key, "id:" | kind | uuid)` cut to 96 bits, base64url: stable (the
  same review keeps its id), and nothing without the key leads from it to the response.
- A cursor is the keyset position (a time and a UUID), encrypted and authenticated:
  version (1) | nonce (12) | position XOR HMAC(key, "ks" | nonce) (24) | tag (16), where the
  nonce is HMAC(key, "iv" | feed | position) (a synthetic IV: equal positions give equal
  cursors, and nothing else repeats) and the tag HMAC(key, "tag" | feed | version | nonce |
  ciphertext). Encrypt-then-MAC with
  HMAC-SHA256 as the pseudo-random function: a client can neither read the position (the
  time to the microsecond, the response's id) nor forge or alter one, and a cursor of one
  feed is not accepted by the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from datetime import UTC, datetime, timedelta
from uuid import UUID

VERSION = 1
_POSITION = struct.Struct(">q16s")
NONCE_BYTES = 12
TAG_BYTES = 16
CURSOR_BYTES = 1 + NONCE_BYTES + _POSITION.size + TAG_BYTES
CURSOR_LENGTH = -(-CURSOR_BYTES * 4 // 3)
ID_BYTES = 12
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_B64 = re.compile(r"[A-Za-z0-9_-]+")


class CursorInvalid(ValueError):
    """Not a cursor this feed issued (malformed, altered, another feed's, another tenant's)."""


def feed_key(secret: bytes) -> bytes:
    return hmac.new(secret, b"feedback-api/public-feeds/v1", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_id(key: bytes, kind: str, internal: UUID) -> str:
    mac = hmac.new(key, b"id:" + kind.encode() + b":" + internal.bytes, hashlib.sha256)
    return _b64(mac.digest()[:ID_BYTES])


def _keystream(key: bytes, nonce: bytes) -> bytes:
    return hmac.new(key, b"ks" + nonce, hashlib.sha256).digest()[: _POSITION.size]


def _tag(key: bytes, feed: str, head: bytes) -> bytes:
    return hmac.new(key, b"tag" + feed.encode() + b":" + head, hashlib.sha256).digest()[:TAG_BYTES]


def _micros(at: datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode_cursor(key: bytes, feed: str, at: datetime, internal: UUID) -> str:
    """Deterministic (the nonce is a MAC of the position, as in SIV): the same page has
    the same cursor, so its answer keeps its ETag."""
    plain = _POSITION.pack(_micros(at), internal.bytes)
    nonce = hmac.new(key, b"iv" + feed.encode() + b":" + plain, hashlib.sha256).digest()[
        :NONCE_BYTES
    ]
    cipher = bytes(a ^ b for a, b in zip(plain, _keystream(key, nonce), strict=True))
    head = bytes([VERSION]) + nonce + cipher
    return _b64(head + _tag(key, feed, head))


def decode_cursor(key: bytes, feed: str, cursor: str) -> tuple[datetime, UUID]:
    if len(cursor) != CURSOR_LENGTH or not _B64.fullmatch(cursor):
        raise CursorInvalid("not a feed cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise CursorInvalid("not a feed cursor") from None
    if len(raw) != CURSOR_BYTES or raw[0] != VERSION:
        raise CursorInvalid("not a feed cursor")
    head, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    if not hmac.compare_digest(tag, _tag(key, feed, head)):
        raise CursorInvalid("not a feed cursor")
    nonce, cipher = head[1 : 1 + NONCE_BYTES], head[1 + NONCE_BYTES :]
    plain = bytes(a ^ b for a, b in zip(cipher, _keystream(key, nonce), strict=True))
    micros, internal = _POSITION.unpack(plain)
    # Genuine cursors hold times we stored; anything else was never issued.
    try:
        at = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise CursorInvalid("not a feed cursor") from None
    return at, UUID(bytes=internal)
