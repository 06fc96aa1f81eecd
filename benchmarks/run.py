"""Benchmark our server against the stack's own ceiling, in one run, and write BENCHMARKS.md.

    python -m benchmarks.run                 # 3 rounds of 5 s per figure, then the million-signature section
    python -m benchmarks.run --quick         # 1 round of 3 s per figure
    python -m benchmarks.run --duration 10 --rounds 5 --connections 64 --scenarios sign,counter --no-scale

Our server is started exactly as `widget-server serve` starts it; the ceiling is bare Starlette
(benchmarks/ceiling.py) on the same uvicorn settings. wrk, in its own process, loads each over
127.0.0.1; each round of ours is measured right after its ceiling's, so a busy neighbour on a
shared machine weighs on both, and the median round's ratio is reported. Ratios are the point:
absolute figures vary between machines.
The sections between the markers in BENCHMARKS.md are replaced; the text around them is kept.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.server_harness import fetch

from . import scale
from .harness import (
    PARTNER_ORIGIN,
    ROOT,
    BenchmarkError,
    Pledge,
    Server,
    WrkResult,
    integrity,
    keep_logs,
    machine,
    prepare_pledge,
    run_wrk,
    servers_stopped,
    start_server,
    wrk_available,
)

RUN_BEGIN = "<!-- benchmarks.run:begin -->"
RUN_END = "<!-- benchmarks.run:end -->"
SKELETON = f"""# Benchmarks

Figures from `python -m benchmarks.run` (the table between the markers is rewritten by each run).

{RUN_BEGIN}
{RUN_END}
"""


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    path: str  # with {slug} and {token}
    script: str | None = None  # benchmarks/lua/<script>.lua
    accept: str = ""
    gzip: bool = False
    target_ratio: float | None = None
    target_p99_ms: float | None = None


SCENARIOS = (
    Scenario(
        "sign",
        "Signing, form → thank-you page (no JS)",
        "/embed/{slug}/sign",
        "sign",
        accept="text/html",
        target_ratio=0.40,
        target_p99_ms=50,
    ),
    Scenario(
        "sign_json",
        "Signing, form → JSON (enhanced form)",
        "/embed/{slug}/sign",
        "sign",
        accept="application/json",
        target_ratio=0.40,
        target_p99_ms=50,
    ),
    Scenario("counter", "Counter `/api/pledges/{slug}/count`", "/api/pledges/{slug}/count", target_ratio=0.80),
    Scenario("counter_token", "Counter with a partner token", "/api/pledges/{slug}/count?token={token}"),
    Scenario(
        "embed",
        "Embed page `/embed/{slug}?token=…`",
        "/embed/{slug}?token={token}&parent=" + PARTNER_ORIGIN,
        target_ratio=0.50,
    ),
    Scenario("widget_js", "`/widget.js` (gzip)", "/widget.js", gzip=True),
)


def _measure(
    server: Server,
    scenario: Scenario,
    pledge: Pledge,
    form_token: str,
    args: argparse.Namespace,
    work: Path,
    warmup: int,
) -> WrkResult:
    path = scenario.path.format(slug=pledge.slug, token=pledge.partner_token)
    headers = {"Accept-Encoding": "gzip"} if scenario.gzip else {}
    if scenario.accept and not scenario.script:
        headers["Accept"] = scenario.accept

    def once(seconds: int) -> WrkResult:
        script_args: list[str] = []
        if scenario.script == "sign":
            # A prefix unique to this run and server keeps every email new, as in a real surge.
            script_args = [form_token, path, scenario.accept, f"{server.name}-{secrets.token_hex(4)}"]
        return run_wrk(
            server.url + path,
            seconds=seconds,
            connections=args.connections,
            threads=args.threads,
            script=scenario.script,
            script_args=script_args,
            headers=headers,
            work_dir=work,
        )

    if warmup:
        warm = once(warmup)
        if warm.failures:
            raise BenchmarkError(f"{server.name} {scenario.key} (warm-up): {warm.errors} (see {server.log_path})")
    cpu_before = server.cpu_seconds()
    result = once(args.duration)
    if result.requests:
        result.server_cpu_us = (server.cpu_seconds() - cpu_before) / result.requests * 1e6
    if result.failures:
        raise BenchmarkError(f"{server.name} {scenario.key}: {result.errors} (see {server.log_path})")
    return result


def _last_lines(line: str) -> str:
    """The end of a JSON log line's traceback, where the error is."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line[-1500:]
    return f"{entry.get('message', '')} … {str(entry.get('error', ''))[-1500:]}"


def _form_token(html: bytes) -> str:
    match = re.search(rb'name="form_token" value="([^"]+)"', html)
    if not match:
        raise BenchmarkError("the embed page has no form token")
    return match.group(1).decode()


def _our_answers(ours: Server, pledge: Pledge) -> tuple[str, dict[str, list[tuple[str, str]]], int, int]:
    """One answer of ours per endpoint: the form token, every endpoint's headers, the page sizes."""
    answers: dict[str, list[tuple[str, str]]] = {}
    embed_path = f"/embed/{pledge.slug}?token={pledge.partner_token}&parent={PARTNER_ORIGIN}"
    status, answers["embed"], page = fetch(ours.url + embed_path)
    if status != 200:
        raise BenchmarkError(f"the embed page answered {status}")
    form_token = _form_token(page)
    sign_url = f"{ours.url}/embed/{pledge.slug}/sign"
    thanks = b""
    for key, accept in (("sign", "text/html"), ("sign_json", "application/json")):
        body = f"name=Size+Check&email={key}-check%40example.org&form_token={form_token}".encode()
        status, answers[key], answer = fetch(
            sign_url, body, {"Content-Type": "application/x-www-form-urlencoded", "Accept": accept}
        )
        if status != 200 or (b"You have signed" not in answer and b'"signed"' not in answer):
            raise BenchmarkError(f"a signature answered {status}")
        thanks = thanks or answer
    status, answers["counter"], _ = fetch(f"{ours.url}/api/pledges/{pledge.slug}/count")
    status, answers["widget_js"], _ = fetch(f"{ours.url}/widget.js", headers={"Accept-Encoding": "gzip"})
    return form_token, answers, len(page), len(thanks)


def run(args: argparse.Namespace) -> dict[str, Any]:
    wrk_available()
    chosen = [s for s in SCENARIOS if not args.scenarios or s.key in args.scenarios]
    if not chosen:
        raise BenchmarkError(f"no scenario among {args.scenarios}; known: {[s.key for s in SCENARIOS]}")
    info = machine()
    with tempfile.TemporaryDirectory(prefix="widget-bench-") as tmp:
        work = Path(tmp)
        pledge = prepare_pledge(work, args.db)
        servers: list[Server] = []
        with servers_stopped(servers):
            workers = ["--workers", str(args.workers)] if args.workers else []
            ours = start_server(
                "ours",
                ["-m", "widget_server.cli", "serve", "--db", str(pledge.database), *workers],
                pledge.env,
                work,
                cwd=args.ours_from or ROOT,
            )
            servers.append(ours)
            form_token, answers, page_bytes, thanks_bytes = _our_answers(ours, pledge)
            (work / "headers.json").write_text(json.dumps(answers))
            ceiling_args = [
                "-m",
                "benchmarks.ceiling",
                "--page-bytes",
                str(page_bytes),
                "--thanks-bytes",
                str(thanks_bytes),
                "--asset",
                str(ROOT / "static" / "widget.js"),
            ]
            ceilings = {"ceiling": start_server("ceiling", ceiling_args, {}, work)}
            if args.with_headers_ceiling:
                ceilings["ceiling_headers"] = start_server(
                    "ceiling-headers", [*ceiling_args, "--headers", str(work / "headers.json")], {}, work
                )
            servers += ceilings.values()
            started = time.monotonic()
            rows = []
            for scenario in chosen:
                print(f"· {scenario.key}:", end="", flush=True, file=sys.stderr)
                row: dict[str, Any] = {"scenario": scenario}
                rounds: dict[str, list[WrkResult]] = {}
                # Ceiling, ours, ceiling, ours…: each round of ours right after its ceiling's, so
                # a neighbour busy for a while weighs on both, and the median round's ratio
                # leaves out a round it spoiled for one of them only.
                for turn in range(args.rounds):
                    print(f" round {turn + 1}:" if args.rounds > 1 else "", end="", file=sys.stderr)
                    for key, server in (*ceilings.items(), ("ours", ours)):
                        print(f" {server.name}…", end="", flush=True, file=sys.stderr)
                        warmup = args.warmup if turn == 0 else 0
                        rounds.setdefault(key, []).append(
                            _measure(server, scenario, pledge, form_token, args, work, warmup)
                        )
                for key, results in rounds.items():
                    row[key] = WrkResult.combined(results)
                    row[f"{key}_rounds"] = results
                for key in ceilings:
                    pairs = list(zip(rounds["ours"], rounds[key], strict=True))
                    row[f"ratio_{key}"] = statistics.median(o.rps / c.rps if c.rps else 0.0 for o, c in pairs)
                    row[f"cpu_ratio_{key}"] = statistics.median(
                        c.server_cpu_us / o.server_cpu_us if o.server_cpu_us else 0.0 for o, c in pairs
                    )
                print(
                    f" {row['ours'].rps:,.0f} req/s, {row['ratio_ceiling']:.0%} of the ceiling"
                    f" (CPU {row['cpu_ratio_ceiling']:.0%})",
                    file=sys.stderr,
                )
                rows.append(row)
            memory = ours.rss_kib()
            ours_exit = ours.stop()
            if ours_exit != 0 and not args.ours_from:
                raise BenchmarkError(f"our server exited {ours_exit} on SIGTERM; see {ours.log_path}")
            stored, problems = integrity(pledge.database)
            errors = ours.log_errors()
            if errors:
                raise BenchmarkError(
                    f"our server logged {len(errors)} errors (logs kept in {keep_logs(work)}), the first:"
                    f" {_last_lines(errors[0])}"
                )
        info["load_average_after"] = machine()["load_average"]
        return {
            "machine": info,
            "settings": {
                "duration_s": args.duration,
                "rounds": args.rounds,
                "warmup_s": args.warmup,
                "connections": args.connections,
                "wrk_threads": args.threads,
                "page_bytes": page_bytes,
                "thanks_bytes": thanks_bytes,
                "headers": {key: len(value) for key, value in answers.items()},
            },
            "rows": rows,
            "signatures_stored": stored,
            "integrity_problems": problems,
            "server_memory_kib": memory,
            "ours_exit": ours_exit,
            "ours_from": str(args.ours_from or ""),
            "elapsed_s": round(time.monotonic() - started, 1),
        }


def _met(row: dict[str, Any], ceiling: str = "ceiling") -> str:
    scenario: Scenario = row["scenario"]
    checks = []
    if scenario.target_ratio is not None:
        checks.append(row[f"ratio_{ceiling}"] >= scenario.target_ratio)
    if scenario.target_p99_ms is not None:
        checks.append(row["ours"].latency_ms["p99"] <= scenario.target_p99_ms)
    if not checks:
        return "—"
    return "yes" if all(checks) else "**no**"


def _target(scenario: Scenario) -> str:
    parts = []
    if scenario.target_ratio is not None:
        parts.append(f"≥ {scenario.target_ratio:.0%}")
    if scenario.target_p99_ms is not None:
        parts.append(f"p99 ≤ {scenario.target_p99_ms:.0f} ms")
    return ", ".join(parts) or "—"


def render(report: dict[str, Any]) -> str:
    m, s = report["machine"], report["settings"]
    headers_too = bool(report["rows"]) and "ceiling_headers" in report["rows"][0]
    lines = [
        f"Run on {m['date']}: {m['nproc']} CPUs ({m['cpu']}), {m['kernel']}, Python {m['python']},"
        f" SQLite {m['sqlite']}, {m['wrk']}.",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + ".",
        f"Load: wrk, {s['wrk_threads']} thread(s), {s['connections']} connections, {s.get('rounds', 1)} round(s)"
        f" of {s['duration_s']} s per figure, ceiling and ours in turn, after {s['warmup_s']} s of warm-up;"
        " server and wrk on the same machine over 127.0.0.1."
        f" Load average before {m['load_average']}, after {m['load_average_after']}.",
    ]
    if report["ours_from"]:
        lines.append(f"Our server ran from {report['ours_from']} (a before/after comparison).")
    extra_head = " | With our headers req/s | Ratio" if headers_too else ""
    lines += [
        "",
        "| Endpoint | Ours req/s | p50 ms | p99 ms | CPU µs/req | Ceiling req/s | p50 ms | p99 ms | CPU µs/req"
        f" | Ratio | CPU ratio{extra_head} | Target | Met |",
        "|---|" + "---:|" * (10 + (2 if headers_too else 0)) + "---|---|",
    ]
    for row in report["rows"]:
        ours: WrkResult = row["ours"]
        bare: WrkResult = row["ceiling"]
        extra = ""
        if headers_too:
            extra = f" | {row['ceiling_headers'].rps:,.0f} | {row['ratio_ceiling_headers']:.0%}"
        lines.append(
            f"| {row['scenario'].label} | {ours.rps:,.0f} | {ours.latency_ms['p50']:.1f} | {ours.latency_ms['p99']:.1f}"
            f" | {ours.server_cpu_us:.0f} | {bare.rps:,.0f} | {bare.latency_ms['p50']:.1f}"
            f" | {bare.latency_ms['p99']:.1f} | {bare.server_cpu_us:.0f} | {row['ratio_ceiling']:.0%}"
            f" | {row['cpu_ratio_ceiling']:.0%}{extra} | {_target(row['scenario'])} | {_met(row)} |"
        )
    rss = report["server_memory_kib"]
    lines += [
        "",
        "Ratio: ours ÷ ceiling in requests per second, the unit of the targets, taken per round and the"
        " median round's given; Met judges it, and p99."
        " Req/s, CPU µs/req and p99 cover all rounds' requests together (p99 pooled from wrk's"
        " per-round percentiles, benchmarks/lua/report.lua); p50 is the median round's."
        " CPU µs/req: the server process's CPU time (all threads, from /proc) per answered request;"
        " CPU ratio = ceiling's ÷ ours. It estimates the same ratio but barely moves when other processes"
        " share the machine, so trust it over req/s when the load average above is high.",
        "",
        "Ceiling: bare Starlette on the same uvicorn settings (benchmarks/ceiling.py): it parses the same"
        " form, or answers a constant JSON, or a constant HTML page, of our sizes (embed page"
        f" {s['page_bytes']:,} bytes, thank-you page {s['thanks_bytes']:,} bytes), with Starlette's"
        " default headers.",
    ]
    if headers_too:
        counts = ", ".join(f"{k} {v}" for k, v in s["headers"].items())
        lines.append(
            "With our headers: the same ceiling sending, as constant bytes, every header our server sent for"
            f" that endpoint (CORS, caching, ETag, the security headers; counts: {counts})."
        )
    exit_text = "clean exit on SIGTERM" if report["ours_exit"] == 0 else f"exit status {report['ours_exit']} on SIGTERM"
    lines.append(
        f"After the run: {report['signatures_stored']:,} signatures stored, kept counts"
        f" {'agree with the rows' if not report['integrity_problems'] else 'DISAGREE: '}"
        f"{'; '.join(report['integrity_problems'])}, server resident memory"
        f" {rss.get('VmRSS', 0) / 1024:.0f} MB (peak {rss.get('VmHWM', 0) / 1024:.0f} MB),"
        f" no errors in the server log, {exit_text}."
    )
    return "\n".join(lines)


def write_markdown(path: Path, section: str, begin: str = RUN_BEGIN, end: str = RUN_END) -> None:
    """Replace the text between the markers (creating the file or markers if absent)."""
    text = path.read_text() if path.exists() else SKELETON
    if begin not in text or end not in text:
        text = text.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{section}\n{end}{tail}")


def _plain(value: Any) -> Any:
    if isinstance(value, WrkResult):
        return value.as_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _jsonable(report: dict[str, Any]) -> dict[str, Any]:
    rows = [
        {
            **{k: _plain(v) for k, v in r.items() if k != "scenario"},
            "scenario": r["scenario"].key,
            "met": _met(r),
            **({"met_with_headers": _met(r, "ceiling_headers")} if "ceiling_headers" in r else {}),
        }
        for r in report["rows"]
    ]
    return {**report, "rows": rows}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one round of 3 s per figure, 1 s warm-up")
    parser.add_argument("--duration", type=int, help="seconds of load per round (default 5)")
    parser.add_argument("--rounds", type=int, help="rounds per figure, ceiling and ours in turn (default 3)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up load before each figure (default 2)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: the server needs a core)")
    parser.add_argument(
        "--scenarios",
        type=lambda v: [s for s in v.split(",") if s],
        help="comma-separated subset of: " + ", ".join(s.key for s in SCENARIOS),
    )
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md", help="Markdown file to update")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--no-write", action="store_true", help="print only; write no file")
    parser.add_argument("--no-scale", action="store_true", help="skip the million-signature measurements")
    parser.add_argument(
        "--db",
        metavar="URL",
        help="measure against this empty database, e.g. postgresql://…/bench (default: new SQLite)",
    )
    parser.add_argument("--workers", type=int, metavar="N", help="serve with N worker processes (PostgreSQL only)")
    parser.add_argument(
        "--ours-from",
        type=Path,
        metavar="DIR",
        help="serve ours from another checkout of the repository (a before/after comparison)",
    )
    parser.add_argument(
        "--with-headers-ceiling",
        action="store_true",
        help="also measure a ceiling that sends our exact response headers as constants",
    )
    parser.add_argument(
        "--scale-signatures",
        type=int,
        default=1_000_000,
        help="signatures in the large database of the scale measurements",
    )
    args = parser.parse_args(argv)
    args.duration = args.duration or (3 if args.quick else 5)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    if args.duration < 1 or args.rounds < 1 or args.connections < args.threads:
        parser.error("--duration and --rounds must be ≥ 1 and --connections ≥ --threads")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except BenchmarkError as exc:
        print(f"benchmark: {exc}", file=sys.stderr)
        return 1
    section = render(report)
    print(section)
    scale_report = None
    if not args.no_scale:
        print(f"· scale: {args.scale_signatures:,} signatures…", file=sys.stderr)
        try:
            scale_report = scale.measure(args.scale_signatures, min(args.duration, 3))
        except BenchmarkError as exc:
            print(f"benchmark: {exc}", file=sys.stderr)
            return 1
        print("\n" + scale.render(scale_report))
    if args.json or not args.no_write:
        json_path = args.json or ROOT / "benchmarks" / "results" / f"run-{time.strftime('%Y%m%d-%H%M%S')}.json"
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({**_jsonable(report), "scale": scale_report}, indent=2) + "\n")
        print(f"\nWrote {json_path}", file=sys.stderr)
    if not args.no_write:
        write_markdown(args.output, section)
        if scale_report:
            write_markdown(args.output, scale.render(scale_report), scale.SCALE_BEGIN, scale.SCALE_END)
        print(f"Wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
