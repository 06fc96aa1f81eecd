"""Where the time goes: py-spy samples our server while wrk loads one scenario.

    pip install py-spy
    python -m benchmarks.profile counter            # writes benchmarks/results/profile-counter.txt
    python -m benchmarks.profile sign --duration 10 --format speedscope

The text format is py-spy's "raw" collapsed stacks, summarised here as the functions that
take the most samples (own time and total time), which is what a change should be judged by.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tests.server_harness import http_get

from .harness import PARTNER_ORIGIN, ROOT, BenchmarkError, prepare_pledge, run_wrk, start_server
from .run import SCENARIOS


def summarise(collapsed: str, top: int = 25) -> str:
    """The functions with the most samples, by own time and by total (inclusive) time."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    out = [f"{samples} samples", "", "Own time:"]
    out += [f"  {n / samples:6.1%}  {f}" for f, n in own.most_common(top)]
    out += ["", "Total time:"]
    out += [f"  {n / samples:6.1%}  {f}" for f, n in total.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", choices=[s.key for s in SCENARIOS])
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--format", choices=["summary", "speedscope", "flamegraph"], default="summary")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--top", type=int, default=40, help="functions listed in the summary")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy")
    if not py_spy:
        print("profile: py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return 1
    scenario = next(s for s in SCENARIOS if s.key == args.scenario)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    suffix = {"summary": "txt", "speedscope": "json", "flamegraph": "svg"}[args.format]
    output = args.output or results / f"profile-{scenario.key}.{suffix}"
    with tempfile.TemporaryDirectory(prefix="widget-profile-") as tmp:
        work = Path(tmp)
        pledge = prepare_pledge(work)
        server = start_server(
            "ours", ["-m", "widget_server.cli", "serve", "--db", str(pledge.database)], pledge.env, work
        )
        try:
            path = scenario.path.format(slug=pledge.slug, token=pledge.partner_token)
            page = http_get(f"{server.url}/embed/{pledge.slug}?token={pledge.partner_token}&parent={PARTNER_ORIGIN}")[1]
            match = re.search(rb'name="form_token" value="([^"]+)"', page)
            if not match:
                raise BenchmarkError("the embed page has no form token")
            raw = output.with_suffix(".collapsed")
            spy = subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(server.process.pid),
                    "--duration",
                    str(args.duration),
                    "--rate",
                    "500",
                    "--nonblocking",
                    "--format",
                    "raw" if args.format == "summary" else args.format,
                    "--output",
                    str(raw if args.format == "summary" else output),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            headers = {"Accept-Encoding": "gzip"} if scenario.gzip else {}
            load = threading.Thread(
                target=run_wrk,
                kwargs={
                    "url": server.url + path,
                    "seconds": args.duration + 1,
                    "connections": args.connections,
                    "threads": 1,
                    "script": scenario.script,
                    "headers": headers,
                    "work_dir": work,
                    "script_args": [match.group(1).decode(), path, scenario.accept, "profile"]
                    if scenario.script
                    else [],
                },
            )
            load.start()
            spy.wait(args.duration + 60)
            load.join(args.duration + 60)
            if spy.returncode != 0:
                raise BenchmarkError(f"py-spy failed: {spy.stderr.read().decode() if spy.stderr else ''}")
            if args.format == "summary":
                output.write_text(summarise(raw.read_text(), args.top) + "\n")
        except BenchmarkError as exc:
            print(f"profile: {exc}", file=sys.stderr)
            return 1
        finally:
            server.stop()
    print(output.read_text() if args.format == "summary" else f"Wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
