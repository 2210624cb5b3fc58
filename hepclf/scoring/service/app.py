"""The FastAPI application: health, model listing, scoring and batch jobs.

Every endpoint but ``/health`` needs the bearer token (the OpenAPI description at
``/docs`` and ``/openapi.json`` is public: it holds no data). Errors are JSON
``{"detail": ...}``: 401 token, 403 path outside the data roots, 404 unknown model, version,
alias or job, 409 an output name holding a file hepclf did not write, 413 too large, 422 a
payload that cannot be scored or a job that would fail (the field or file is named; also
JSON nested too deeply to parse), 500 a failure of the service itself (e.g. a
RecursionError while scoring: never blamed on the request), 503 shutting down. ``/health``
runs on the event loop itself, so it answers while every worker thread is busy.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hepclf.runtime.errors import HepclfError
from hepclf.runtime.version import __version__
from hepclf.scoring.file_job import ScoreSettings, parse_step_size
from hepclf.scoring.service.auth import token_guard
from hepclf.scoring.service.jobs import JobManager, JobRequest, check_job
from hepclf.scoring.service.limits import BodySizeLimit
from hepclf.scoring.service.paths import DataRoots, ForbiddenPath
from hepclf.scoring.service.payloads import (
    PayloadError,
    ScoreRequest,
    ScoreResponse,
    features_from_columns,
    features_from_events,
)
from hepclf.scoring.service.registry import ModelCache, ModelNotFound, list_models
from hepclf.scoring.service.settings import ServiceSettings

_LOG = logging.getLogger("hepclf.service")
_UNPARSED_BODY = "There was an error parsing the body"
_UNPARSED_BODY_422 = (
    "the request body cannot be read: JSON nested deeper than the parser allows (about 1,000 "
    "levels) or numbers beyond any range; send events as a list of flat objects"
)


class ScoringFailed(HepclfError):
    """A checked request that the model failed to score: the service's failure (500)."""


def _status_of(err: HepclfError) -> int:
    if isinstance(err, PayloadError):
        return err.status_code
    if isinstance(err, ScoringFailed):
        return 500
    if isinstance(err, ForbiddenPath):
        return 403
    if isinstance(err, ModelNotFound):
        return 404
    return 422


def create_app(settings: ServiceSettings) -> FastAPI:
    """The app for ``settings``; ``hepclf serve`` runs it with uvicorn."""
    roots = DataRoots(settings.data_roots)
    cache = ModelCache(settings.cached_models, settings.alias_ttl_s)
    jobs = JobManager(settings.job_workers, settings.job_time_limit_s)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.shutdown()

    app = FastAPI(
        title="hepclf scoring service",
        version=__version__,
        description="Score events with models from the MLflow registry, one request or "
        "whole ROOT files at a time.",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    @app.exception_handler(HepclfError)
    async def user_error(_: Request, err: HepclfError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=_status_of(err))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        if err.status_code == 400 and err.detail == _UNPARSED_BODY:  # FastAPI's words
            return JSONResponse({"detail": _UNPARSED_BODY_422}, status_code=422)
        return await http_exception_handler(request, err)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, err: RequestValidationError) -> JSONResponse:
        try:
            return await request_validation_exception_handler(request, err)
        except RecursionError:  # JSON just shallow enough to parse is too deep to echo back
            errors = [{k: v for k, v in e.items() if k != "input"} for e in err.errors()]
            return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, str]:
        """Liveness, without authentication."""
        return {"status": "ok", "version": __version__}

    guarded = APIRouter(dependencies=[Depends(token_guard(settings.token))])

    @guarded.get("/models", tags=["models"])
    def models() -> dict[str, Any]:
        """Registered models: aliases, latest and aliased versions with their run's metrics."""
        return {"models": list_models()}

    @guarded.post("/models/{name}/score", tags=["models"], response_model_exclude_none=True)
    def score(name: str, request: ScoreRequest) -> ScoreResponse:
        """Scores for raw branch values per event, or for feature columns."""
        if request.size > settings.max_events:
            raise PayloadError(
                f"{request.size:,} events in one request; at most {settings.max_events:,} "
                "(split the request, or submit files with POST /jobs)",
                status_code=413,
            )
        version = cache.resolve(name, request.alias, request.version)
        model = cache.get(name, version)
        try:
            if request.events is not None:
                X = features_from_events(request.events, model.bundle)
            else:
                assert request.columns is not None
                X = features_from_columns(request.columns, model.bundle)
            n_classes = len(model.bundle.classes)
            proba = model.probabilities(X) if len(X) else np.empty((0, n_classes))
        except HepclfError:
            raise  # the request's fault, named (422)
        except Exception as err:  # the values were checked: what fails now is the service
            _LOG.exception("model %r version %s failed while scoring", name, version)
            raise ScoringFailed(
                f"model {name!r} version {version} failed while scoring ({type(err).__name__}: "
                f"{err}); the request was not at fault, the service log has the details"
            ) from None
        unrouted = np.flatnonzero(~np.isfinite(proba).all(axis=1))
        if unrouted.size:
            raise PayloadError(
                f"events {unrouted[:5].tolist()}{' ...' if unrouted.size > 5 else ''} fall in "
                f"no category or in several of model {name!r}; each event must pass exactly "
                "one category selection"
            )
        if model.bundle.multiclass:
            classes = model.bundle.classes
            columns = {c: proba[:, k].tolist() for k, c in enumerate(classes)}
            return ScoreResponse(
                model=name, version=version, classes=classes, probabilities=columns
            )
        return ScoreResponse(scores=proba[:, 1].tolist(), model=name, version=version)

    @guarded.post("/jobs", status_code=202, tags=["jobs"])
    def submit(request: JobRequest) -> dict[str, Any]:
        """Score files under the data roots in the background; poll GET /jobs/{id}."""
        inputs: list[str] = []
        for pattern in request.inputs:
            matched = [str(p) for p in roots.expand(pattern)]
            if not matched:
                raise PayloadError(f"inputs: no file matches {pattern!r}")
            inputs.extend(m for m in matched if m not in inputs)
        options = ScoreSettings(
            tree=request.tree,
            out_dir=roots.check(request.out) if request.out else None,
            fmt=request.format,
            step_size=parse_step_size(str(request.step_size)),
            keep_branches=tuple(request.keep_branches),
            selection=request.selection,
            overwrite=request.overwrite,
            on_nonfinite=request.on_nonfinite,
        )
        version = cache.resolve(request.model, request.alias, request.version)
        model = cache.get(request.model, version)
        check_job(inputs, model, options)
        return jobs.submit(request.model, version, inputs, model, options).to_dict()

    @guarded.get("/jobs/{job_id}", tags=["jobs"])
    def job_status(job_id: str) -> dict[str, Any]:
        """Status of a job; when finished, every file's output path, entries and error."""
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} (jobs are kept until the service stops)")
        return job.to_dict()

    app.include_router(guarded)
    return app
