"""Service settings and the bearer token, checked before the server starts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hepclf.runtime.errors import HepclfError

TOKEN_ENV = "HEPCLF_TOKEN"
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the app needs; ``token=None`` only with ``--insecure-local``."""

    token: str | None
    data_roots: tuple[Path, ...] = ()
    max_body_bytes: int = 10 * 2**20
    max_events: int = 10_000
    job_workers: int = 1
    job_time_limit_s: float = 3600.0
    cached_models: int = 16
    alias_ttl_s: float = 10.0


def load_token(token_file: Path | None, insecure_local: bool) -> str | None:
    """The token from ``--token-file`` (first line), else ``$HEPCLF_TOKEN``.

    Without either, the service refuses to start unless ``--insecure-local`` is given.
    """
    if token_file is not None:
        try:
            lines = token_file.read_text().strip().splitlines()
        except OSError as err:
            raise HepclfError(f"--token-file {token_file}: cannot be read ({err})") from None
        token = lines[0].strip() if lines else ""
        source = f"--token-file {token_file}"
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
        source = f"${TOKEN_ENV}"
    if not token:
        if insecure_local:
            return None
        raise HepclfError(
            f"no bearer token: set {TOKEN_ENV} or give --token-file FILE (e.g. made with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))' > token`), or pass "
            "--insecure-local to serve without authentication on 127.0.0.1 only"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise HepclfError(
            f"the token from {source} has {len(token)} characters; use at least "
            f"{MIN_TOKEN_LENGTH} random characters (e.g. secrets.token_urlsafe(32))"
        )
    return token
