"""The staff pages' own stylesheet and script, from static/staff/ (no other folder is served)."""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import Response

from widget_server.errors import NotFound
from widget_server.files import STATIC_DIR
from widget_server.messages import NO_SUCH_ADDRESS

_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_FILES = {"staff.css", "staff.js"}


@functools.cache
def _read(name: str) -> bytes:
    return (STATIC_DIR / "staff" / name).read_bytes()


async def staff_asset(request: Request) -> Response:
    """GET /admin/static/{name}: a fixed list of files, read once per process."""
    name = request.path_params["name"]
    if name not in _FILES:
        raise NotFound(NO_SUCH_ADDRESS)
    return Response(
        _read(name),
        media_type=_TYPES[name[name.rindex(".") :]],
        headers={"Cache-Control": "public, max-age=300"},
    )
