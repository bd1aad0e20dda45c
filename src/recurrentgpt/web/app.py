"""The web studio: a FastAPI app over one Loom, serving the JSON API and the plain HTML/JS pages.

    from recurrentgpt import Loom
    from recurrentgpt.web import create_app
    app = create_app(Loom.open("library.db"))      # then: uvicorn.run(app, host="127.0.0.1")

Pages: /  (library)   /write/{story}  (writer)   /read/{story}  (interactive-fiction reader)
       /docs  (the API, read from /openapi.json)

Several worker processes (``recurrentgpt serve --workers N``) each build their app with
``app_from_env``, a factory for uvicorn that reads the options from the environment.
Nothing another worker needs lives in a worker's memory: stories live in the database; the only
per-process state is the registry of running jobs (see streaming.py).
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from importlib import resources
from typing import AsyncIterator, Iterable

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..library import LibraryOptions
from ..loom import Loom
from . import api, errors, generate
from .security import Guard
from .streaming import Jobs

MAX_BODY = 256 * 1024
STATIC = resources.files("recurrentgpt.web") / "static"


# What ``app_from_env`` reads besides the library's options (``library.ENVIRONMENT``).
WEB_ENVIRONMENT = {
    "token": "RECURRENTGPT_TOKEN",
    "allowed_hosts": "RECURRENTGPT_ALLOWED_HOSTS",  # comma-separated; unset: create_app's default
}


def create_app(
    loom: Loom, *, token: str | None = None, max_body: int = MAX_BODY, allowed_hosts: Iterable[str] | None = None,
    close_loom: bool = False,
) -> FastAPI:
    """``token``: required on every request when set. ``allowed_hosts``: Host names served (default:
    loopback names only when there is no token, any name when there is one). ``close_loom``: close the
    loom when the server stops (for a loom built for this app only)."""
    jobs = Jobs()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(jobs.shutdown)  # no worker may write after the server (and its loom) closes
        if close_loom:
            await run_in_threadpool(loom.close)

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


def environment_for(options: LibraryOptions, *, token: str | None,
                    allowed_hosts: Iterable[str] | None) -> dict[str, str | None]:
    """The environment ``app_from_env`` reads (None: unset it)."""
    return {
        **options.environment(),
        WEB_ENVIRONMENT["token"]: token or None,
        WEB_ENVIRONMENT["allowed_hosts"]: None if allowed_hosts is None else ",".join(sorted(allowed_hosts)),
    }


def app_from_env() -> FastAPI:
    """The studio over a Loom built from the environment (``library.ENVIRONMENT`` and ``WEB_ENVIRONMENT``):
    a factory for uvicorn, ``uvicorn --factory recurrentgpt.web.app:app_from_env``, which is how
    ``serve --workers N`` runs each worker process. Unset variables take the config file's values, then the
    CLI's defaults."""
    from .. import config as user_config

    options = LibraryOptions.from_environment(file=user_config.load())  # the file: below the environment
    loom = options.open_loom()
    hosts = os.environ.get(WEB_ENVIRONMENT["allowed_hosts"])
    return create_app(
        loom,
        token=os.environ.get(WEB_ENVIRONMENT["token"]) or None,
        allowed_hosts=None if hosts is None else [h.strip() for h in hosts.split(",") if h.strip()],
        close_loom=True,
    )
