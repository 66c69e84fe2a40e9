from __future__ import annotations

from uuid import UUID

from uuid_utils.compat import uuid7


def new_id() -> UUID:
    """Time-ordered UUIDv7: new rows land at the right edge of the B-tree, which keeps
    inserts cheap and indexes compact at tens of millions of rows."""
    return uuid7()
