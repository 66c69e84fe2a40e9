"""The parameters of the routes under /v1/customers: the customer's ref in the path and the
scopes that read and write customers (the customers and the privacy endpoints share them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.keys.dependencies import require
from feedback_api.kit.types import ExternalRef

CustomersWrite = Annotated[AuthContext, Depends(require(Scope.CUSTOMERS_WRITE))]
CustomersRead = Annotated[AuthContext, Depends(require(Scope.CUSTOMERS_READ))]
Ref = Annotated[
    ExternalRef,
    Path(description="Your system's id for the customer (no spaces, `/`, `?` or `#`)."),
]
