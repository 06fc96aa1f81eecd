"""Signing's CPU without the network: the whole ASGI app called in a loop by 32 concurrent clients.

    python -m benchmarks.inprocess                       # JSON answers, 5 rounds of 3,000 signatures
    python -m benchmarks.inprocess --accept html --ours-from /tmp/before   # another checkout's code

Each round posts the real form (a valid form token, a new email each time) through the app's
middleware, routes and writer, as the real server would, and reports the CPU time of the whole
process (every thread: the writer's commits too) per signature; the median round is printed. The
writer's batch sizes are counted too, since how many signatures share a commit decides much of
the cost. Run the same command against two checkouts (`--ours-from`) to compare them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


async def _call(app: Any, method: str, path: str, body: bytes = b"", headers: tuple[Any, ...] = ()) -> list[Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path.split("?")[0],
        "raw_path": path.split("?")[0].encode(),
        "query_string": path.partition("?")[2].encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    out: list[Any] = []

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    await app(scope, receive, send)
    return out


def measure(accept: str, signatures: int, rounds: int) -> None:
    """In this process, with the code importable here (the checkout this was started from)."""
    import widget_server
    from benchmarks.harness import PARTNER_ORIGIN, prepare_pledge
    from widget_server.settings import Settings

    if (Path(widget_server.__file__).parent / "web").is_dir():
        from widget_server.web.app import create_app
    else:  # a checkout from before the package had layers
        from widget_server.app import create_app  # type: ignore[no-redef,import-not-found]

    pledge = prepare_pledge(Path(tempfile.mkdtemp(prefix="widget-inprocess-")))
    os.environ.update(pledge.env)
    app = create_app(Settings.from_env())

    async def go() -> None:
        async with app.router.lifespan_context(app):
            page = await _call(app, "GET", f"/embed/{pledge.slug}?token={pledge.partner_token}&parent={PARTNER_ORIGIN}")
            html = b"".join(m.get("body", b"") for m in page if m["type"] == "http.response.body").decode()
            match = re.search(r'name="form_token" value="([^"]+)"', html)
            assert match, "the embed page has no form token"
            token = match.group(1)
            headers = (
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"accept", b"application/json" if accept == "json" else b"text/html"),
                (b"accept-encoding", b"gzip, deflate, br"),
            )
            sizes: collections.Counter[int] = collections.Counter()
            store = app.state.services.writer._store if hasattr(app.state.services.writer, "_store") else None
            if store is not None:
                write = store.write_signatures

                async def counted(batch: Any, *args: Any, **kwargs: Any) -> Any:
                    sizes[len(batch)] += 1
                    return await write(batch, *args, **kwargs)

                store.write_signatures = counted
            cpu: list[float] = []
            per_client = signatures // 32
            for turn in range(rounds):

                async def client(i: int, turn: int = turn) -> None:
                    for j in range(per_client):
                        body = (
                            f"name=Bench+Signer&occupation=nurse&email=r{turn}-{i}-{j}%40example.org&form_token={token}"
                        ).encode()
                        answer = await _call(app, "POST", f"/embed/{pledge.slug}/sign", body, headers)
                        assert answer[0]["status"] == 200, answer[0]

                started = time.process_time()
                await asyncio.gather(*(client(i) for i in range(32)))
                cpu.append((time.process_time() - started) / (per_client * 32) * 1e6)
            batches = sum(sizes.values())
            mean = sum(n * k for n, k in sizes.items()) / batches if batches else 0
            print(
                f"signing ({accept}): CPU {statistics.median(cpu):.0f} µs a signature (median of {rounds};"
                f" rounds {', '.join(f'{c:.0f}' for c in cpu)})"
                + (f"; {batches} commits, {mean:.1f} signatures each" if batches else "")
            )

    asyncio.run(go())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.inprocess", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accept", choices=["json", "html"], default="json")
    parser.add_argument("--signatures", type=int, default=3000, help="a round's signatures")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ours-from", type=Path, help="measure another checkout's code (its own benchmarks/)")
    args = parser.parse_args(argv)
    if args.ours_from:
        # That checkout's package must be the one imported: run there, with its path first.
        command = [sys.executable, "-c", _RUN_THERE, args.accept, str(args.signatures), str(args.rounds)]
        env = {**os.environ, "PYTHONPATH": str(args.ours_from)}
        return subprocess.run(command, cwd=args.ours_from, env=env, check=False).returncode
    measure(args.accept, args.signatures, args.rounds)
    return 0


# Run in the other checkout with this file's own code (its copy may not have this module).
_RUN_THERE = f"""
import sys, runpy
sys.path.insert(0, "")
module = runpy.run_path({str(Path(__file__))!r}, run_name="inprocess")
module["measure"](sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
"""

if __name__ == "__main__":
    sys.exit(main())
