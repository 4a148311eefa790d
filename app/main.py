"""The FastAPI application factory."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from app.access.auth import KeyCache
from app.api.caching import AnswerCache
from app.api.errors import document_text_rules, install_error_handlers, problem_responses
from app.api.middleware import BodySizeLimit, HeadAsGet, RateLimiter, RefuseNulBytes
from app.api.ogc import COLLECTIONS, OgcFeatures
from app.api.ogc.collections import Collection
from app.api.ogc.openapi import rest_only
from app.api.routes import (
    access,
    alerts,
    areas,
    categories,
    downloads,
    health,
    imports,
    incident_writes,
    incidents,
    layers,
    metrics,
    profiles,
    reports,
    runs,
)
from app.db.deployment import DeploymentCache
from app.db.engine import app_engine, system_engine
from app.settings import Settings, get_settings
from app.web import routes as web


def settle_garbage_collector() -> None:
    """Keep what startup made out of the cyclic collector's way, and let it run less often.

    A page of a thousand features makes tens of thousands of small objects; with the default
    threshold (700) the collector runs many times per page and walks every object the app
    holds, which cost more than encoding the page. Reference counting frees what a request
    makes; the collector is only for cycles, which are rare here.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


def create_app(
    settings: Settings | None = None, collections: Sequence[Collection] = COLLECTIONS
) -> FastAPI:
    """Return the service: routes, error handlers and the app role's engine.

    `collections` are what /ogc serves: the registry's, or more (a benchmark adds its table).
    """
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level.upper())
    engine = app_engine(settings)
    jobs = system_engine(settings)  # runs started over the API work as the nightly ones do

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nightly = None
        if settings.scheduler:
            from app.runs.schedule import Scheduler

            nightly = Scheduler(jobs, settings)
            nightly.start()
        settle_garbage_collector()
        yield
        if nightly is not None:
            nightly.stop()
        engine.dispose()
        jobs.dispose()

    production = settings.environment == "production"
    app = FastAPI(
        title="EST Lägesbild",
        version="0.1.0",
        description="Shared situational picture of crimes and incidents for kommuner and police.",
        lifespan=lifespan,
        docs_url=None if production else "/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.system_engine = jobs
    app.state.deployment = DeploymentCache()
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.auth_failures = RateLimiter(settings.auth_failures_per_minute)
    app.state.key_cache = KeyCache(settings.key_cache_s)
    app.state.tile_cache = AnswerCache(int(settings.tile_cache_mb * 2**20))
    install_error_handlers(app)
    routers = (
        health,
        access,
        areas,
        categories,
        profiles,
        incidents,
        incident_writes,
        imports,
        layers,
        downloads,
        runs,
        reports,
        alerts,
        metrics,
    )
    for module in routers:
        app.include_router(module.router, responses=problem_responses())
    # every layer as OGC API – Features; /ogc/api is its document, /openapi.json the REST API's
    app.include_router(OgcFeatures(collections).router)
    # the map page, its login, the picture beside the map, and its script, style and MapLibre
    app.include_router(web.data_router, responses=problem_responses())
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=web.STATIC), name="static")
    generate = app.openapi
    app.openapi = lambda: document_text_rules(rest_only(generate()))  # type: ignore[method-assign]
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RefuseNulBytes)
    app.add_middleware(HeadAsGet)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        )
    return app
