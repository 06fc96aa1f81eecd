"""The project as a stranger installs it: `pip install .` (a built wheel, not the checkout) into a fresh
virtual environment, then `widget-server serve` and `widget-server demo` run from another folder.

The rest of the suite runs against the checkout, where templates/, static/ and examples/ sit beside
the package; only this test notices when a wheel leaves them (or a subpackage) behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest

from tests.server_harness import ROOT, STARTUP_SECONDS, free_port

pytestmark = pytest.mark.slow

# The demo's placeholders in examples/embed.html, which it fills in (widget_server/demo.py).
EXAMPLE_TOKEN = "PASTE-PARTNER-TOKEN-HERE"
EXAMPLE_SERVER = "http://127.0.0.1:8000"
PARTNER_ORIGIN = "https://riverside.example"
SHIPPED = {"templates": "_templates", "static": "_static", "examples": "_examples"}
# Not build inputs: the build reads a copy of the tree without them, so nothing in the checkout
# (a stale build/ folder above all, whose files setuptools would put in the wheel) leaks in.
NOT_BUILD_INPUTS = {".git", "build", "dist", "node_modules", "widget-data", "docs", "tests", "benchmarks"}
# pip installs from PyPI the first time; later runs reuse its cache.
PIP_SECONDS = 300


@dataclass(frozen=True)
class Installed:
    """A wheel built from the tree, installed alone in a fresh virtual environment."""

    source: Path  # the copy of the tree the wheel was built from
    wheel: Path
    bin: Path  # the environment's bin/ folder
    home: Path  # an empty working directory, outside the checkout


def _copy_build_inputs(destination: Path) -> Path:
    def ignored(folder: str, names: list[str]) -> set[str]:
        at_top = Path(folder) == ROOT
        return {
            name
            for name in names
            if (at_top and name in NOT_BUILD_INPUTS)
            or name in ("__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache")
            or name.endswith(".egg-info")
        }

    return Path(shutil.copytree(ROOT, destination, ignore=ignored))


def _run(args: list[str | Path], timeout: float, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    # Not tmp_path: pytest keeps the last runs' folders, and a virtual environment is large.
    with tempfile.TemporaryDirectory(prefix="widget-wheel-") as scratch:
        base = Path(scratch)
        source = _copy_build_inputs(base / "source")
        _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", base / "dist", source], PIP_SECONDS)
        (wheel,) = (base / "dist").glob("widget_server-*.whl")
        # Without pip of its own: the outer pip installs into it, so no ensurepip is needed.
        _run([sys.executable, "-m", "venv", "--without-pip", base / "venv"], 60)
        python = base / "venv" / "bin" / "python"
        _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", wheel], PIP_SECONDS)
        home = base / "home"
        home.mkdir()
        yield Installed(source, wheel, base / "venv" / "bin", home)


def _environment(installed: Installed, public_url: str, data: str) -> dict[str, str]:
    """The caller's environment, minus anything pointing at the checkout, with its own data folder."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WIDGET_")}
    env.pop("PYTHONPATH", None)  # nothing may lead the installed package back to the checkout
    # No secret key: the server generates one into the data folder, as on a stranger's first run.
    env.update(WIDGET_DATA_DIR=str(installed.home / data), WIDGET_PUBLIC_URL=public_url)
    return env


@contextmanager
def running(installed: Installed, args: list[str], ready_line: str, env: dict[str, str]) -> Iterator[list[str]]:
    """`widget-server ARGS` from the environment, until its log says `ready_line`; SIGTERM after."""
    process = subprocess.Popen(
        [installed.bin / "widget-server", *args],
        cwd=installed.home,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log: list[str] = []
    ready, settled = threading.Event(), threading.Event()

    def read_log() -> None:
        # Drains the pipe for the process's whole life, so it never blocks writing its log.
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line)
            if ready_line in line:
                ready.set()
                settled.set()
        settled.set()  # exited: fail at once rather than wait out the deadline

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        settled.wait(STARTUP_SECONDS)
        assert ready.is_set(), f"widget-server {args[0]} did not start:\n" + "".join(log[-20:])
        yield log
    except BaseException:
        print(f"widget-server {args[0]}'s log:\n" + "".join(log))  # pytest shows it with the failure
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join()
        assert process.stdout is not None
        process.stdout.close()


def fetch(url: str, **headers: str) -> tuple[bytes, Message]:
    """GET `url`; the body and the (case-insensitive) response headers."""
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
        assert response.status == 200, url
        return response.read(), response.headers


def test_the_wheel_carries_every_module_and_every_file_the_server_reads(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        # Nothing else lands in site-packages beside the package and its metadata.
        metadata = "-".join(installed.wheel.name.split("-")[:2]) + ".dist-info"  # name-version.dist-info
        assert {name.split("/")[0] for name in names} == {"widget_server", metadata}
        package = installed.source / "widget_server"
        modules = {
            path.relative_to(installed.source).as_posix()
            for path in package.rglob("*")
            if path.suffix in (".py", ".sql") and "__pycache__" not in path.parts
        }
        missing = sorted(modules - names)
        assert missing == [], f"not in the wheel; list their packages under [tool.setuptools] packages: {missing}"
        for folder, packaged in SHIPPED.items():
            shipped = [path for path in (installed.source / folder).rglob("*") if path.is_file()]
            assert shipped, folder
            for path in shipped:
                relative = path.relative_to(installed.source / folder).as_posix()
                inside = f"widget_server/{packaged}/{relative}"
                assert inside in names, f"{folder}/{relative} is not in the wheel"
                assert wheel.read(inside) == path.read_bytes(), inside


def test_the_installed_package_reads_its_own_copies_not_the_checkout(installed: Installed) -> None:
    where = _run(
        [
            installed.bin / "python",
            "-c",
            "import json; from widget_server import files as f;"
            "print(json.dumps([str(f.TEMPLATES_DIR), str(f.STATIC_DIR), str(f.EXAMPLE_PAGE)]))",
        ],
        60,
        cwd=installed.home,
        env=_environment(installed, "http://127.0.0.1:8000", "where"),
    )
    venv = installed.bin.parent.resolve()
    for path in map(Path, json.loads(where)):
        assert path.exists(), path
        assert path.resolve().is_relative_to(venv), f"{path} is outside the virtual environment"


def test_the_installed_server_serves_the_loader_the_frame_script_and_an_embed_page(installed: Installed) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _environment(installed, url, "serve")
    statement = installed.home / "statement.html"
    statement.write_text("<p>Keep personal data away from enforcement.</p>", encoding="utf-8")
    cli = installed.bin / "widget-server"
    _run(
        [cli, "pledge", "add", "wheel-pledge", "--title", "The wheel pledge", "--statement-file", statement],
        60,
        cwd=installed.home,
        env=env,
    )
    partner = json.loads(
        _run(
            [cli, "partner", "add", "wheel-pledge", "--name", "Riverside", "--origin", PARTNER_ORIGIN, "--json"],
            60,
            cwd=installed.home,
            env=env,
        )
    )

    with running(installed, ["serve", "--host", "127.0.0.1", "--port", str(port)], "Uvicorn running on", env):
        loader, headers = fetch(f"{url}/widget.js")
        assert loader == (installed.source / "static" / "widget.js").read_bytes()
        assert headers.get("Content-Type", "").startswith("text/javascript")
        frame_script, _ = fetch(f"{url}/static/frame.js")
        assert frame_script == (installed.source / "static" / "frame.js").read_bytes()
        page, headers = fetch(f"{url}/embed/wheel-pledge?token={partner['token']}", Referer=f"{PARTNER_ORIGIN}/")
        assert headers.get("Content-Type", "").startswith("text/html")
        assert "The wheel pledge" in page.decode()
        assert PARTNER_ORIGIN in headers.get("Content-Security-Policy", "")
        # The page's own links to the frame's script and stylesheet lead to the packaged files.
        for name in ("frame.js", "widget.css"):
            stem, suffix = name.split(".")
            link = re.search(rf'(?:src|href)="(/static/{stem}\b[^"]*\.{suffix})"', page.decode())
            assert link, f"the embed page does not link {name}"
            linked, _ = fetch(url + link[1])
            assert linked == (installed.source / "static" / name).read_bytes(), link[1]


def test_the_installed_demo_serves_the_example_partner_page(installed: Installed) -> None:
    port, partner_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["demo", "--host", "127.0.0.1", "--port", str(port), "--partner-port", str(partner_port)]
    with running(installed, args, "Partner's page:", _environment(installed, url, "demo")):
        body, _ = fetch(f"http://127.0.0.1:{partner_port}/")
    page = body.decode()
    example = (installed.source / "examples" / "embed.html").read_text(encoding="utf-8")
    assert EXAMPLE_TOKEN not in page
    assert f'<script async src="{url}/widget.js"></script>' in page
    for line in example.splitlines():
        if EXAMPLE_TOKEN not in line and EXAMPLE_SERVER not in line:
            assert line in page
