"""Signing with email confirmation or partner webhooks on, against signing with both off.

    python -m benchmarks.delivery                       # 3 rounds of 5 s per mode
    python -m benchmarks.delivery --rounds 5 --duration 10 --json results/delivery.json

Three servers, each started as `widget-server serve` starts it with the same settings (mail
configured, local webhooks allowed), each on a database of its own with one pledge and one
partner: **off** (neither feature), **confirm** (the pledge asks for confirmation: every
signature is stored pending and queues an email) and **webhook** (the partner has a webhook: every
signature queues a delivery). wrk posts the same form to each in turn, round after round, every
post ticking "the partner may contact me", so the three differ only in the feature. The emails go
to an SMTP server (aiosmtpd) and the webhooks to an HTTP receiver, both on 127.0.0.1 in this
process, so what the outbox worker sends is really sent while signing goes on.

The issue's target: signing throughput with either feature on within 10% of off. After the load,
the run waits until every email and webhook has arrived (one per signature) and fails if one is
missing, if the outbox is not empty, or if our servers logged an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.confirmation.conftest import Inbox, Received, SmtpServer
from tests.delivery.conftest import Receiver
from tests.server_harness import fetch

from .harness import (
    PARTNER_ORIGIN,
    SLUG,
    BenchmarkError,
    Pledge,
    Server,
    WrkResult,
    machine,
    prepare_pledge,
    run_wrk,
    start_server,
)
from .run import _form_token

MODES = ("off", "confirm", "webhook")


class CountingInbox(Inbox):
    """Keeps each message's envelope only: parsing every message (as the tests' inbox does) would
    make the mail server, in this process, the slowest part of the run."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), EmailMessage(), b""))
        return "250 OK: queued"


DELIVERY_DEADLINE_SECONDS = 300


def _configure(mode: str, pledge: Pledge, env: dict[str, str], webhook_url: str) -> None:
    """Switch the mode's feature on for its pledge, through the real services."""
    from widget_server.services import webhooks
    from widget_server.services.pledge_settings import edit_pledge
    from widget_server.settings import Settings
    from widget_server.storage.engines import open_store

    settings = Settings.from_env(environ=env)

    async def go() -> None:
        async with open_store(pledge.database) as store:
            if mode == "confirm":
                await edit_pledge(store, pledge.slug, confirm_email=True, settings=settings)
            elif mode == "webhook":
                await webhooks.set_webhook(store, settings, pledge.slug, "Bench Partner", webhook_url)

    asyncio.run(go())


def _outbox_left(database: Path | str) -> int:
    from widget_server.storage.engines import open_store

    async def go() -> int:
        async with open_store(database) as store:
            return len(await store.outbox_messages(limit=1_000_000))

    return asyncio.run(go())


def _stored(database: Path | str) -> tuple[int, int]:
    """(counted, pending) signatures of the benchmark pledge."""
    from widget_server.storage.engines import open_store

    async def go() -> tuple[int, int]:
        async with open_store(database) as store:
            pledge = await store.pledge_by_slug(SLUG)
            assert pledge is not None
            total, _ = await store.counts(pledge.id)
            return total, sum((await store.pending_counts(pledge.id)).values())

    return asyncio.run(go())


def _wait_delivered(mode: str, pledge: Pledge, inbox: Inbox, receiver: Receiver) -> None:
    """Until every signature of `mode`'s pledge has its email or webhook, and its outbox is empty."""
    if mode == "off":
        return
    deadline = time.monotonic() + DELIVERY_DEADLINE_SECONDS
    want = sum(_stored(pledge.database)) if mode == "confirm" else _stored(pledge.database)[0]
    while time.monotonic() < deadline:
        got = len(inbox.received) if mode == "confirm" else len(receiver.requests)
        if got >= want and not _outbox_left(pledge.database):
            return
        time.sleep(0.1)
    raise BenchmarkError(f"{mode}: not everything was delivered within {DELIVERY_DEADLINE_SECONDS} s")


def run(args: argparse.Namespace) -> dict[str, Any]:
    info = machine()
    inbox = CountingInbox()
    smtp = SmtpServer(inbox)
    smtp.start()
    receiver = Receiver()
    servers: dict[str, Server] = {}
    pledges: dict[str, Pledge] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="widget-delivery-") as tmp:
            work = Path(tmp)
            for mode in MODES:
                (work / mode).mkdir()
                pledge = prepare_pledge(work / mode)
                env = {
                    **pledge.env,
                    "WIDGET_SMTP_URL": smtp.url(),
                    "WIDGET_MAIL_FROM": "Pledge <pledge@campaign.example>",
                    "WIDGET_WEBHOOK_ALLOW_LOCAL": "on",
                }
                _configure(mode, pledge, env, f"http://127.0.0.1:{receiver.port}/hook")
                pledges[mode] = pledge
                servers[mode] = start_server(
                    mode, ["-m", "widget_server.cli", "serve", "--db", str(pledge.database)], env, work / mode
                )
            tokens = {}
            for mode, server in servers.items():
                pledge = pledges[mode]
                status, _, page = fetch(
                    f"{server.url}/embed/{pledge.slug}?token={pledge.partner_token}&parent={PARTNER_ORIGIN}"
                )
                if status != 200:
                    raise BenchmarkError(f"{mode}: the embed page answered {status}")
                tokens[mode] = _form_token(page)

            rounds: dict[str, list[WrkResult]] = {mode: [] for mode in MODES}
            lags: dict[str, list[float]] = {mode: [] for mode in MODES}
            for turn in range(args.rounds):
                print(f"round {turn + 1}:", end="", flush=True, file=sys.stderr)
                for mode in MODES:
                    server, pledge = servers[mode], pledges[mode]
                    path = f"/embed/{pledge.slug}/sign"
                    script_args = [
                        tokens[mode],
                        path,
                        "application/json",
                        f"{mode}-{turn}-{secrets.token_hex(4)}",
                        "opt_in_partner=yes",
                    ]
                    cpu_before = server.cpu_seconds()
                    result = run_wrk(
                        server.url + path,
                        seconds=args.duration,
                        connections=args.connections,
                        threads=1,
                        script="sign",
                        script_args=script_args,
                        work_dir=work,
                    )
                    if result.failures:
                        raise BenchmarkError(f"{mode}: {result.errors} (see {server.log_path})")
                    result.server_cpu_us = (server.cpu_seconds() - cpu_before) / max(result.requests, 1) * 1e6
                    rounds[mode].append(result)
                    # Let this round's emails or webhooks leave before the next mode's round, so that
                    # sending them weighs on this mode's figures only: how long that took is the lag.
                    ended = time.monotonic()
                    _wait_delivered(mode, pledges[mode], inbox, receiver)
                    lags[mode].append(time.monotonic() - ended)
                    print(f" {mode} {result.rps:,.0f} req/s", end="", flush=True, file=sys.stderr)
                print(file=sys.stderr)

            # Every signature's email or webhook must arrive: the outbox drains after the load.
            load_ended = time.monotonic()
            confirm_stored = sum(_stored(pledges["confirm"].database))
            webhook_stored = _stored(pledges["webhook"].database)[0]
            deadline = load_ended + DELIVERY_DEADLINE_SECONDS
            while time.monotonic() < deadline:
                if len(inbox.received) >= confirm_stored and len(receiver.requests) >= webhook_stored:
                    break
                time.sleep(0.2)
            drained_s = time.monotonic() - load_ended
            for mode in ("confirm", "webhook"):
                failures = [line for line in servers[mode].log().splitlines() if "outbox message" in line]
                if failures:
                    print(f"{mode}: {len(failures)} outbox lines, the first: {failures[:3]}", file=sys.stderr)
            emails = len({got.rcpt_tos[0] for got in inbox.received})
            hooks = len({request.webhook_id for request in receiver.requests})
            print(
                f"emails {len(inbox.received)} ({emails} distinct),"
                f" webhooks {len(receiver.requests)} ({hooks} distinct)",
                file=sys.stderr,
            )
            if len(inbox.received) != confirm_stored or len(receiver.requests) != webhook_stored:
                raise BenchmarkError(
                    f"delivered {len(inbox.received)} of {confirm_stored} emails and {len(receiver.requests)} of"
                    f" {webhook_stored} webhooks within {DELIVERY_DEADLINE_SECONDS} s"
                )
            for mode in MODES:
                # A message is removed just after its receiver took it: give the last ones a moment.
                while (left := _outbox_left(pledges[mode].database)) and time.monotonic() < deadline:
                    time.sleep(0.2)
                errors = servers[mode].log_errors()
                if left or errors:
                    raise BenchmarkError(f"{mode}: {left} messages left in the outbox, {len(errors)} errors logged")
            for server in servers.values():
                server.stop()
            servers.clear()
    finally:
        for server in servers.values():
            server.stop()
        receiver.close()
        smtp.stop()

    rows = []
    for mode in MODES:
        combined = WrkResult.combined(rounds[mode])
        ratio = statistics.median(o.rps / b.rps for o, b in zip(rounds[mode], rounds["off"], strict=True))
        rows.append(
            {
                "mode": mode,
                "rps": combined.rps,
                "p99_ms": combined.latency_ms["p99"],
                "cpu_us": combined.server_cpu_us,
                "ratio_to_off": ratio,
                "rounds_rps": [r.rps for r in rounds[mode]],
                "lag_s": max(lags[mode]),
            }
        )
    return {
        "machine": info,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "connections": args.connections,
        "rows": rows,
        "emails": confirm_stored,
        "webhooks": webhook_stored,
        "drained_after_load_s": round(drained_s, 1),
    }


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Run on {m['date']}: {m['nproc']} CPUs, Python {m['python']}, SQLite {m['sqlite']}; wrk, 1 thread,"
        f" {report['connections']} connections, {report['rounds']} rounds of {report['duration_s']} s per mode,"
        f" the modes in turn. Load average before {m['load_average']}.",
        "",
        "| Signing, form → JSON | req/s | p99 ms | CPU µs/req (server) | Throughput ÷ off (median round)"
        " | Last delivery after the load (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    labels = {"off": "Both off", "confirm": "Confirmation on (email per signature)", "webhook": "Webhook on"}
    for row in report["rows"]:
        lines.append(
            f"| {labels[row['mode']]} | {row['rps']:,.0f} | {row['p99_ms']:.1f} | {row['cpu_us']:.0f}"
            f" | {row['ratio_to_off']:.0%} | {row['lag_s']:.1f} |"
        )
    lines += [
        "",
        f"Delivered: {report['emails']:,} emails and {report['webhooks']:,} webhooks, every one, the last"
        f" {report['drained_after_load_s']} s after the load ended; the outboxes were empty after.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.delivery", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    try:
        report = run(args)
    except BenchmarkError as exc:
        print(f"benchmarks.delivery: {exc}", file=sys.stderr)
        return 1
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
