"""The loader partners paste, the frame's script and its stylesheet: kept in memory, pre-gzipped."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from ..errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    media_type: str

    @classmethod
    def load(cls, path: Path) -> Asset:
        body = path.read_bytes()
        return cls(
            body=body,
            gzipped=gzip.compress(body, compresslevel=9, mtime=0),
            etag='"' + hashlib.sha256(body).hexdigest()[:16] + '"',
            media_type=TYPES[path.suffix],
        )


def load_assets(directory: Path = STATIC_DIR) -> dict[str, Asset]:
    return {p.name: Asset.load(p) for p in sorted(directory.iterdir()) if p.suffix in TYPES}


def _serve(request: Request, name: str) -> Response:
    asset = request.app.state.assets.get(name)
    if asset is None:
        raise NotFound("There is no such file.")
    headers = {
        "ETag": asset.etag,
        # Short: a fixed loader reaches every partner page within minutes.
        "Cache-Control": "public, max-age=300",
        "Vary": "Accept-Encoding",
        # The loader runs on partners' pages, so other origins must be able to load it.
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


async def widget_js(request: Request) -> Response:
    return _serve(request, "widget.js")


async def static_file(request: Request) -> Response:
    return _serve(request, request.path_params["name"])
