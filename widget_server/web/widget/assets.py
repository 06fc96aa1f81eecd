"""The loader partners paste, the frame's script and its stylesheet: kept in memory, pre-gzipped.

Every partner page view asks for the loader, so each answer is built once at start-up, headers
included, and a request only picks one of three: not modified, gzipped, or plain.
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
from widget_server.web.edge.headers import Secured, secured
from widget_server.web.fast.responses import Prebuilt, raw

TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    media_type: str
    # Ready-made response headers: (not modified, gzipped, plain).
    headers: tuple[Secured, Secured, Secured] = field(repr=False, compare=False)

    @classmethod
    def load(cls, path: Path) -> Asset:
        body = path.read_bytes()
        gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        media_type = TYPES[path.suffix]
        common = {
            "ETag": etag,
            # Short: a fixed loader reaches every partner page within minutes.
            "Cache-Control": "public, max-age=300",
            "Vary": "Accept-Encoding",
            # The loader runs on partners' pages, so other origins must be able to load it.
            "Cross-Origin-Resource-Policy": "cross-origin",
        }
        return cls(
            body=body,
            gzipped=gzipped,
            etag=etag,
            media_type=media_type,
            headers=(
                secured(raw(common)),
                secured(raw({**common, "Content-Encoding": "gzip", "Content-Length": str(len(gzipped)),
                              "Content-Type": media_type})),
                secured(raw({**common, "Content-Length": str(len(body)), "Content-Type": media_type})),
            ),
        )


def load_assets(directory: Path = STATIC_DIR) -> dict[str, Asset]:
    return {p.name: Asset.load(p) for p in sorted(directory.iterdir()) if p.suffix in TYPES}


def _serve(request: Request, name: str) -> Response:
    asset = request.app.state.assets.get(name)
    if asset is None:
        raise NotFound(messages.NO_SUCH_FILE)
    not_modified, gzipped, plain = asset.headers
    # Copies: a response's header list is its own to change.
    if asset.etag in request.headers.get("if-none-match", ""):
        return Prebuilt(b"", Secured(not_modified), status_code=304)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Prebuilt(asset.gzipped, Secured(gzipped))
    return Prebuilt(asset.body, Secured(plain))


async def widget_js(request: Request) -> Response:
    return _serve(request, "widget.js")


async def static_file(request: Request) -> Response:
    return _serve(request, request.path_params["name"])
