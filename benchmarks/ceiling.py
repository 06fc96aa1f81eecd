"""The stack's ceiling: bare Starlette endpoints doing the least our endpoints must do.

Served on the same uvicorn settings as `widget-server serve` (server.uvicorn_options), so
the ratio of our figure to this one is what our own code costs, whatever the machine.
Body sizes come from the harness, which measured our real responses first.

Two flavours, both measured in every run:
- plain: Starlette's own responses with its default headers (the brief's ceiling);
- `--headers FILE`: the same status, headers and body size our server sent for each endpoint
  (CORS, caching, ETag, Content-Security-Policy, …), as constant bytes. Our endpoints must send
  those headers, and uvicorn's cost grows with every header, so this is the least ours must do.

    python -m benchmarks.ceiling --port P --page-bytes N --thanks-bytes N --asset static/widget.js
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from widget_server.server import uvicorn_options

# Headers a response's own body decides, or the server adds itself.
_NOT_COPIED = {"content-length", "date", "server", "connection", "keep-alive", "transfer-encoding"}

RawHeaders = list[tuple[bytes, bytes]]


def _html_of(size: int) -> bytes:
    """A plain HTML page of exactly `size` bytes (at least a minimal skeleton)."""
    head = b"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Pledge</title></head><body><p>"
    tail = b"</p></body></html>"
    filler = max(0, size - len(head) - len(tail))
    return head + (b"Lorem ipsum dolor sit amet. " * (filler // 28 + 1))[:filler] + tail


class _Constant(Response):
    """Body and headers built once; nothing is computed per request."""

    def __init__(self, body: bytes, raw_headers: RawHeaders) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = list(raw_headers)


def _raw(copied: list[list[str]], body: bytes) -> RawHeaders:
    headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in copied if n.lower() not in _NOT_COPIED]
    return [*headers, (b"content-length", str(len(body)).encode())]


def create_app(
    page_bytes: int, thanks_bytes: int, asset: bytes, headers: dict[str, list[list[str]]] | None = None
) -> Starlette:
    page = _html_of(page_bytes)
    thanks = _html_of(thanks_bytes)
    asset_gz = gzip.compress(asset, compresslevel=9, mtime=0)
    signed = b'{"status":"signed","total":12345}'
    total = b'{"total":12345}'

    if headers is None:

        async def sign(request: Request) -> Response:
            # The least a sign endpoint does: read the same urlencoded form, answer.
            async with request.form(max_files=0, max_fields=20) as form:
                name = form.get("name")
            if "application/json" in request.headers.get("accept", ""):
                return JSONResponse({"status": "signed", "total": 12345})
            return HTMLResponse(thanks if name else page)

        async def count(request: Request) -> Response:
            return JSONResponse({"total": 12345})

        async def embed(request: Request) -> Response:
            return HTMLResponse(page)

        async def widget_js(request: Request) -> Response:
            if "gzip" in request.headers.get("accept-encoding", ""):
                return Response(asset_gz, media_type="text/javascript", headers={"Content-Encoding": "gzip"})
            return Response(asset, media_type="text/javascript")
    else:
        answers = {
            "sign": _raw(headers["sign"], thanks),
            "sign_json": _raw(headers["sign_json"], signed),
            "counter": _raw(headers["counter"], total),
            "embed": _raw(headers["embed"], page),
            "widget_js": _raw(headers["widget_js"], asset_gz),
        }

        async def sign(request: Request) -> Response:
            async with request.form(max_files=0, max_fields=20) as form:
                form.get("name")
            if "application/json" in request.headers.get("accept", ""):
                return _Constant(signed, answers["sign_json"])
            return _Constant(thanks, answers["sign"])

        async def count(request: Request) -> Response:
            return _Constant(total, answers["counter"])

        async def embed(request: Request) -> Response:
            return _Constant(page, answers["embed"])

        async def widget_js(request: Request) -> Response:
            return _Constant(asset_gz, answers["widget_js"])

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/embed/{slug}/sign", sign, methods=["POST"]),
            Route("/api/pledges/{slug}/count", count),
            Route("/embed/{slug}", embed),
            Route("/widget.js", widget_js),
            Route("/healthz", healthz),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--page-bytes", type=int, required=True)
    parser.add_argument("--thanks-bytes", type=int, required=True)
    parser.add_argument("--asset", type=Path, required=True)
    parser.add_argument("--headers", type=Path, help="JSON: endpoint → our server's response headers")
    args = parser.parse_args(argv)
    headers = json.loads(args.headers.read_text()) if args.headers else None
    app = create_app(args.page_bytes, args.thanks_bytes, args.asset.read_bytes(), headers)
    uvicorn.Server(uvicorn.Config(app, **uvicorn_options(args.host, args.port))).run()


if __name__ == "__main__":
    main()
