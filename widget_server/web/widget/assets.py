"""The loader partners paste, the frame's script and stylesheet, and the icon: kept in memory.

Every partner page view asks for the loader, so each answer is built once at start-up, headers
included, and a request only picks one of three: not modified, gzipped, or plain.

The loader keeps one URL for ever (it is in partners' pages), so it is cached briefly and
revalidated by ETag: a fix reaches every partner page within minutes. The frame's script and
stylesheet are named by their content in the pages (`frame.3f2a9c1d04b7.js`), so they are
cached for a year as immutable and a new version is simply a new name. Their plain names are
still served, briefly cached, for pages rendered before a deploy.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from widget_server import messages
from widget_server.errors import NotFound
from widget_server.files import STATIC_DIR
from widget_server.web.edge.headers import Secured, SecuredAsIs, secured
from widget_server.web.fast.responses import Prebuilt, raw

TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".ico": "image/x-icon",
}
COMPRESSED = {".js", ".css"}
SHORT = "public, max-age=300"
IMMUTABLE = "public, max-age=31536000, immutable"
ICON = "public, max-age=604800"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    etag: str
    media_type: str
    # Ready-made response headers: (not modified, gzipped, plain).
    headers: tuple[Secured, Secured, Secured] = field(repr=False, compare=False)

    @classmethod
    def of(cls, body: bytes, suffix: str, cache_control: str) -> Asset:
        gzipped = gzip.compress(body, compresslevel=9, mtime=0) if suffix in COMPRESSED else None
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        media_type = TYPES[suffix]
        common = {
            "ETag": etag,
            "Cache-Control": cache_control,
            "Vary": "Accept-Encoding",
            # The loader runs on partners' pages, so other origins must be able to load it.
            "Cross-Origin-Resource-Policy": "cross-origin",
        }
        zipped = gzipped if gzipped is not None else body
        encoding = {"Content-Encoding": "gzip"} if gzipped is not None else {}
        return cls(
            body=body,
            gzipped=gzipped,
            etag=etag,
            media_type=media_type,
            headers=(
                secured(raw(common)),
                secured(raw({**common, **encoding, "Content-Length": str(len(zipped)), "Content-Type": media_type})),
                secured(raw({**common, "Content-Length": str(len(body)), "Content-Type": media_type})),
            ),
        )


def hashed_name(path: Path, body: bytes) -> str:
    """`frame.js` → `frame.3f2a9c1d04b7.js`: a new name whenever the content changes."""
    return f"{path.stem}.{hashlib.sha256(body).hexdigest()[:12]}{path.suffix}"


class Assets:
    """The files of static/ by the name a URL asks for, and the URL the pages should use for each."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.files: dict[str, Asset] = {}
        self.urls: dict[str, str] = {}
        for path in sorted(directory.iterdir()):
            if path.suffix not in TYPES:
                continue
            body = path.read_bytes()
            if path.suffix == ".ico":
                self.files[path.name] = Asset.of(body, path.suffix, ICON)
                continue
            self.files[path.name] = Asset.of(body, path.suffix, SHORT)
            hashed = hashed_name(path, body)
            self.files[hashed] = Asset.of(body, path.suffix, IMMUTABLE)
            self.urls[path.name] = f"/static/{hashed}"

    def get(self, name: str) -> Asset | None:
        return self.files.get(name)

    def url(self, name: str) -> str:
        """The content-hashed URL of static/`name`, for the pages (a Jinja global: `static_url`)."""
        return self.urls[name]


def load_assets(directory: Path = STATIC_DIR) -> Assets:
    return Assets(directory)


def _serve(request: Request, name: str) -> Response:
    asset = request.app.state.assets.get(name)
    if asset is None:
        raise NotFound(messages.NO_SUCH_FILE)
    not_modified, gzipped, plain = asset.headers
    # Copies: a response's header list is its own to change.
    if asset.etag in request.headers.get("if-none-match", ""):
        return Prebuilt(b"", SecuredAsIs(not_modified), status_code=304)
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        return Prebuilt(asset.gzipped, SecuredAsIs(gzipped))  # already gzipped: nothing for the edge to do
    return Prebuilt(asset.body, Secured(plain))


async def widget_js(request: Request) -> Response:
    return _serve(request, "widget.js")


async def static_file(request: Request) -> Response:
    return _serve(request, request.path_params["name"])


async def favicon(request: Request) -> Response:
    """GET /favicon.ico: a small icon, so a page opened on its own logs no error for it."""
    return _serve(request, "favicon.ico")
