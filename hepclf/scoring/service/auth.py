"""Bearer-token check for every endpoint but ``/health``."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="The service token (HEPCLF_TOKEN).")


def token_guard(expected: str | None) -> Callable[..., None]:
    """A dependency refusing requests without the token (constant-time comparison)."""

    def check(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if expected is None:  # --insecure-local without a token
            return
        given = credentials.credentials.encode() if credentials is not None else b""
        if not secrets.compare_digest(given, expected.encode()):
            raise HTTPException(
                401,
                "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check
