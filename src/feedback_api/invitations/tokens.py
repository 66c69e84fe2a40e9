"""One-tap link tokens: which invitation a link answers, signed so it cannot be forged.

Hand-rolled on the standard library's `hmac` rather than itsdangerous: a token has to fit
in an SMS next to the question (itsdangerous' JSON-and-timestamp tokens for the same claims
run to about 130 characters, these to 74), and rotation wants an explicit key id in the
token so the verifier picks one key instead of trying each. The layout is fixed binary:

    version (1) | tenant id (16) | invitation id (16) | key id (2) | expires, unix s (4) | MAC (16)

base64url without padding. The MAC is HMAC-SHA256 over everything before it, truncated to
128 bits (RFC 2104 §5 allows truncation to half the hash; 2^128 guesses is out of reach).
No personal data is inside: the ids are random and mean nothing without the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

VERSION = 1
_CLAIMS = struct.Struct(">B16s16sHI")
MAC_BYTES = 16
TOKEN_BYTES = _CLAIMS.size + MAC_BYTES
MAX_KID = 0xFFFF
#: Base64url without padding, as `sign` writes it (TOKEN_BYTES encode to 74 characters).
TOKEN_LENGTH = -(-TOKEN_BYTES * 4 // 3)
TOKEN_PATTERN = r"^[A-Za-z0-9_-]+$"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


class TokenInvalid(ValueError):
    """Malformed, forged, altered, or signed with a key that is no longer valid."""


class TokenExpired(ValueError):
    """Genuine, but past its expiry."""


@dataclass(frozen=True, slots=True)
class Claims:
    tenant_id: UUID
    invitation_id: UUID
    kid: int
    expires_at: datetime


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, body, hashlib.sha256).digest()[:MAC_BYTES]


def sign(claims: Claims, secret: bytes) -> str:
    if not 0 < claims.kid <= MAX_KID:
        raise ValueError("kid must be between 1 and 65535")
    body = _CLAIMS.pack(
        VERSION,
        claims.tenant_id.bytes,
        claims.invitation_id.bytes,
        claims.kid,
        int(claims.expires_at.timestamp()),
    )
    return base64.urlsafe_b64encode(body + _mac(secret, body)).rstrip(b"=").decode()


def _decode(token: str) -> bytes:
    # Anything else is not one of ours; checked first so that no input (however long, or
    # with characters base64 would silently skip) reaches the decoder.
    if len(token) != TOKEN_LENGTH or not _TOKEN.fullmatch(token):
        raise TokenInvalid("not a link token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("not a link token") from None
    if len(raw) != TOKEN_BYTES or raw[0] != VERSION:
        raise TokenInvalid("not a link token")
    return raw


def peek(token: str) -> Claims:
    """The claims, NOT verified: only to find the tenant and key to verify with."""
    raw = _decode(token)
    _, tenant, invitation, kid, expires = _CLAIMS.unpack(raw[: _CLAIMS.size])
    return Claims(
        UUID(bytes=tenant), UUID(bytes=invitation), kid, datetime.fromtimestamp(expires, UTC)
    )


def verify(token: str, secret: bytes, now: datetime) -> Claims:
    """The claims of a token signed with `secret`. Checks the MAC (in constant time) before
    the expiry, so an expired-looking forgery is reported as invalid, not as expired."""
    raw = _decode(token)
    body, mac = raw[: _CLAIMS.size], raw[_CLAIMS.size :]
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise TokenInvalid("the link's signature does not match")
    claims = peek(token)
    if now >= claims.expires_at:
        raise TokenExpired("the link has expired")
    return claims
