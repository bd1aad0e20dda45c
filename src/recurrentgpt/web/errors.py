"""Errors as JSON ``{"error": "..."}`` with a status that says whose fault it is.

    NotFoundError   404    unknown story, node or bookmark
    ConflictError   409    another writer moved the story (``node_id``: the work that was kept)
    InputError      400    bad input the loom refused (empty plan, bad settings …)
    validation      422    a body that does not fit the schema
    ModelError      502    the model could not answer, or not in the required shape
    ConfigError     500    the server is misconfigured (missing model, missing extra)
    StoreError      500    the library on disk
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import ConfigError, ConflictError, InputError, ModelError, NotFoundError, RecurrentGPTError, StoreError

log = logging.getLogger("recurrentgpt.web")

_STATUS: list[tuple[type[RecurrentGPTError], int]] = [
    (NotFoundError, 404),
    (ConflictError, 409),
    (InputError, 400),
    (ModelError, 502),
    (ConfigError, 500),
    (StoreError, 500),
]


def status_for(error: RecurrentGPTError) -> int:
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 400


def error_body(error: RecurrentGPTError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": str(error), "status": status_for(error)}
    if isinstance(error, ConflictError) and error.node_id:
        body["node_id"] = error.node_id
    return body


def install(app: FastAPI) -> None:
    @app.exception_handler(RecurrentGPTError)
    async def loom_error(request: Request, e: RecurrentGPTError) -> JSONResponse:
        body = error_body(e)
        return JSONResponse(body, status_code=body.pop("status"))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        problems = []
        for err in e.errors():
            where = ".".join(str(part) for part in err.get("loc", ()) if part != "body")
            problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return JSONResponse({"error": "; ".join(problems) or "invalid request"}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        detail = e.detail if isinstance(e.detail, str) else "request refused"
        return JSONResponse({"error": detail}, status_code=e.status_code, headers=getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def crash(request: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal error: {type(e).__name__}"}, status_code=500)
