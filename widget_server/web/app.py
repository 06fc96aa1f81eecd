"""The application factory: routes, middleware, and a lifespan that opens and closes storage."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Match, Route, Router
from starlette.templating import Jinja2Templates
from starlette.types import Receive, Scope, Send

from widget_server import messages
from widget_server.core.origins import normalise_origin
from widget_server.delivery.worker import OutboxWorker
from widget_server.errors import ConfigError, Invalid, WidgetError
from widget_server.files import TEMPLATES_DIR
from widget_server.security.ratelimit import ClientKeys, RateLimiter, divided, parse_rate
from widget_server.security.tokens import Tokens
from widget_server.services.confirmation import Confirmation
from widget_server.services.webhooks import Webhooks
from widget_server.settings import Settings
from widget_server.storage.catalog import Catalog
from widget_server.storage.engines import open_store
from widget_server.storage.store import BatchResult
from widget_server.storage.writer import SignatureWriter
from widget_server.web import staff
from widget_server.web.edge.middleware import EdgeMiddleware
from widget_server.web.edge.proxies import TrustedProxies
from widget_server.web.errors import http_error, widget_error
from widget_server.web.fast.compressed import CompressiblePageCache
from widget_server.web.health import healthz
from widget_server.web.runtime import Services
from widget_server.web.widget import assets, confirm, counter, form, meta, pages, sign

log = logging.getLogger(__name__)


class View:
    """A route's endpoint: calls `view(request)` and sends the response it returns.

    What Starlette does for a function endpoint, less the second exception wrapper it adds around
    each route: ExceptionMiddleware, around the router, already turns every error into our
    answer, so the wrapper only repeated it on every request (BENCHMARKS.md, item N). Being an
    object, not a function, Starlette calls it as an ASGI app, so each route states its methods.
    """

    def __init__(self, view: Callable[[Request], Awaitable[Response]]) -> None:
        self.view = view

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.view(Request(scope, receive, send))
        await response(scope, receive, send)


def _get(path: str, view: Callable[[Request], Awaitable[Response]]) -> Route:
    return Route(path, View(view), methods=["GET"], name=view.__name__)  # HEAD comes with GET


# Matched in order, one regular expression each: the routes a surge hits come first.
routes = [
    _get("/api/pledges/{slug}/count", counter.count),
    _get("/embed/{slug}", form.embed_page),
    Route("/embed/{slug}/sign", View(sign.sign), methods=["POST"], name="sign"),
    _get("/widget.js", assets.widget_js),
    _get("/static/{name}", assets.static_file),
    _get("/embed/{slug}/counter", counter.counter_page),
    _get("/pledge/{slug}", form.embed_page),
    _get("/pledge/{slug}/privacy", pages.privacy_page),
    _get("/pledge/{slug}/organisations", pages.organisations_page),
    _get("/api/pledges/{slug}/organisations", pages.organisations_json),
    _get("/confirm/{token}", confirm.confirm_page),  # shows one button; only its POST confirms
    Route("/confirm/{token}", View(confirm.confirm), methods=["POST"], name="confirm"),
    _get("/healthz", healthz),
    _get("/favicon.ico", assets.favicon),
    *staff.routes,  # the staff area at /admin, and the partners' report links
]


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up before its request was read (a phone losing signal, mid-post): not an
    error of ours, and nothing is stored. 499 is nginx's status for it; nobody receives it, but
    the access log records it instead of an error with a traceback."""
    return Response(status_code=499)


class SlashRedirect:
    """The router's answer when no route matches: a redirect to the path with its trailing slash
    added or removed, if a route matches that, else the router's own 404.

    Starlette's own redirect builds an absolute URL from the Host header, which anyone sending
    the request chooses (and a cache in front might keep); ours is relative, so it always
    stays on this site.
    """

    def __init__(self, router: Router) -> None:
        self.router = router
        self.not_found = router.not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope["type"] == "http" and path != "/":
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            # Never "//host…": a Location starting with two slashes leaves the site.
            if other.startswith("/") and not other.startswith("//"):
                moved = {**scope, "path": other}
                if any(route.matches(moved)[0] is not Match.NONE for route in self.router.routes):
                    query = scope.get("query_string", b"").decode("latin-1")
                    location = quote(scope.get("root_path", "") + other, safe="/:@!$&'()*+,;=-._~%")
                    await RedirectResponse(location + (f"?{query}" if query else ""))(scope, receive, send)
                    return
        await self.not_found(scope, receive, send)


def _checked_origins(origins: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(normalise_origin(origin) for origin in origins)
    except Invalid as exc:
        raise ConfigError(f"WIDGET_DIRECT_FRAME_ORIGINS: {exc.message}") from None


def create_app(settings: Settings | None = None, clock: Callable[[], float] = time.time) -> Starlette:
    """Build the app; storage is opened by the lifespan, so creating it touches no files."""
    settings = settings or Settings.from_env()
    # Read now, so bad configuration fails at start-up and not on the first signature.
    TrustedProxies(settings.trusted_proxies)
    settings = settings.with_overrides(direct_frame_origins=_checked_origins(settings.direct_frame_origins))
    # Each of several worker processes keeps its own buckets, so each gets its share of the budget.
    client_rate = divided(parse_rate(settings.rate_limit), settings.workers)
    partner_rate = divided(parse_rate(settings.partner_rate_limit), settings.workers)
    keys = settings.signing_keys()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_store(settings.database, pool_size=settings.db_pool_size) as store:
            catalog = Catalog(store, settings.cache_seconds, clock)
            tokens = Tokens(keys)
            outbox: OutboxWorker | None = None

            def committed(result: BatchResult) -> None:
                """A commit moved counts (the catalog shows them at once) and may have queued emails or
                webhooks: the worker sends those now rather than at its next poll."""
                catalog.counts_committed(result)
                if result.queued and outbox is not None:
                    outbox.wake()

            confirmation = Confirmation(store, settings, tokens, on_commit=committed, clock=clock)
            webhooks = Webhooks(store, settings, clock=clock)
            outbox = OutboxWorker(
                store,
                settings,
                {"confirm": confirmation.deliver, "remind": confirmation.deliver, "webhook": webhooks.deliver},
                housekeeping=confirmation.housekeep,
                clock=clock,
                # While signatures surge, sending gives way to signing (the writer is made below).
                give_way=lambda: writer.surging(),
            )
            writer = SignatureWriter(
                store, batch_size=settings.batch_size, confirm_sends=settings.confirm_sends, on_commit=committed
            )
            writer.start()
            outbox.start()
            if not settings.mail_configured and any(p.confirm_email for p in await store.pledges()):
                # Signers of those pledges are told to check their email; their emails wait in the
                # outbox (and go dead) until mail is configured again.
                log.warning(messages.CONFIRM_WITHOUT_MAIL)
            app.state.services = Services(
                settings=settings,
                catalog=catalog,
                writer=writer,
                tokens=tokens,
                client_keys=ClientKeys(clock, keys[-1]),
                client_limiter=RateLimiter(client_rate, clock),
                partner_limiter=RateLimiter(partner_rate, clock),
                clock=clock,
                confirmation=confirmation,
            )
            app.state.store = store  # the staff area's use cases take the Store itself
            app.state.outbox = outbox  # the staff outbox page wakes it after a retry
            log.info("serving %s", store.location)
            try:
                yield
            finally:
                # Graceful stop: sends in flight finish or are left to their leases (sent after a restart),
                # then uvicorn has drained in-flight requests; commit what they queued (their emails and
                # webhooks wait in the outbox for the next start).
                await outbox.close()
                await writer.close()
                await confirmation.close()
        log.info("stopped; every acknowledged signature is committed")

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                EdgeMiddleware,
                trusted=settings.trusted_proxies,
                max_bytes=settings.max_body_bytes,
                access_log=settings.access_log_on,
            ),
        ],
        exception_handlers={WidgetError: widget_error, HTTPException: http_error, ClientDisconnect: client_gone},
        lifespan=lifespan,
    )
    # Autoescaping on for every template: signers' text is only ever shown escaped.
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True, auto_reload=False)
    app.router.redirect_slashes = False  # ours instead: relative, whatever the Host header says
    app.router.default = SlashRedirect(app.router)
    app.state.templates = Jinja2Templates(env=environment)
    app.state.assets = assets.load_assets()
    meta.install(environment, app.state.assets)
    # Kept pages that can also be sent gzipped at the cost of a join (web.fast.compressed).
    app.state.page_cache = CompressiblePageCache()
    return app
