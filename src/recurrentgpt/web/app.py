"""The web studio: a FastAPI app over one Loom, serving the JSON API and the plain HTML/JS pages.

    from recurrentgpt import Loom
    from recurrentgpt.web import create_app
    app = create_app(Loom.open("library.db"))      # then: uvicorn.run(app, host="127.0.0.1")

Pages: /  (library)   /write/{story}  (writer)   /read/{story}  (interactive-fiction reader)
       /docs  (the API, read from /openapi.json)
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib import resources
from typing import AsyncIterator, Iterable

from starlette.concurrency import run_in_threadpool

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..loom import Loom
from . import api, errors, generate
from .security import Guard
from .streaming import Jobs

MAX_BODY = 256 * 1024
STATIC = resources.files("recurrentgpt.web") / "static"


def create_app(
    loom: Loom, *, token: str | None = None, max_body: int = MAX_BODY, allowed_hosts: Iterable[str] | None = None
) -> FastAPI:
    """``token``: required on every request when set. ``allowed_hosts``: Host names served (default:
    loopback names only when there is no token, any name when there is one)."""
    jobs = Jobs()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(jobs.shutdown)  # no worker may write after the server (and its loom) closes

    app = FastAPI(
        lifespan=lifespan,
        title="RecurrentGPT studio",
        version=__version__,
        summary="Write, steer and branch long stories one paragraph at a time.",
        docs_url=None,  # the stock pages load scripts from a CDN; /docs is our own page
        redoc_url=None,
    )
    app.state.loom = loom
    app.state.jobs = jobs
    errors.install(app)
    app.include_router(api.router, tags=["stories"])
    app.include_router(generate.router, tags=["generation (server-sent events)"])
    _pages(app)
    app.add_middleware(Guard, token=token, max_body=max_body, allowed_hosts=allowed_hosts)
    return app


def _pages(app: FastAPI) -> None:
    static = str(STATIC)

    def page(name: str) -> FileResponse:
        return FileResponse(f"{static}/{name}", media_type="text/html", headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    def library() -> FileResponse:
        return page("index.html")

    @app.get("/write/{story_id}", include_in_schema=False)
    def writer(story_id: str) -> FileResponse:
        return page("write.html")

    @app.get("/read/{story_id}", include_in_schema=False)
    def reader(story_id: str) -> FileResponse:
        return page("read.html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return page("docs.html")

    app.mount("/static", StaticFiles(directory=static), name="static")
