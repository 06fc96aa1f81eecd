"""The benchmark harness, run for a second per figure so it cannot rot between real runs.

It asserts that the harness produced figures and kept the file it writes in shape, never how
fast anything was: timing belongs in BENCHMARKS.md, not in tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import ROOT, WrkResult

pytestmark = pytest.mark.slow


def run_benchmark(module: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """`python -m benchmarks.<module> ARGS` from the repository's root; fails the test unless it exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_one_command_measures_ours_against_the_ceiling_and_writes_the_report(tmp_path: Path) -> None:
    report = tmp_path / "BENCHMARKS.md"
    report.write_text(
        "# Benchmarks\n\nWhat we changed, written by hand.\n\n"
        "<!-- benchmarks.run:begin -->\nold figures\n<!-- benchmarks.run:end -->\n\nMore notes.\n"
    )
    figures = tmp_path / "figures.json"
    done = run_benchmark(
        "run",
        "--duration",
        "1",
        "--rounds",
        "2",
        "--warmup",
        "0",
        "--connections",
        "4",
        "--scenarios",
        "sign_json,counter",
        "--with-headers-ceiling",
        "--scale-signatures",
        "1000",
        "--output",
        str(report),
        "--json",
        str(figures),
    )

    data = json.loads(figures.read_text())
    assert [row["scenario"] for row in data["rows"]] == ["sign_json", "counter"]
    for row in data["rows"]:
        for side in ("ours", "ceiling", "ceiling_headers"):
            assert row[side]["requests"] > 0 and row[side]["rps"] > 0 and row[side]["server_cpu_us"] > 0
            assert sum(row[side]["errors"].values()) == 0
            assert 0 < row[side]["latency_ms"]["p50"] <= row[side]["latency_ms"]["p99"]
        assert row["ratio_ceiling"] > 0 and row["cpu_ratio_ceiling"] > 0 and row["ratio_ceiling_headers"] > 0
        assert row["met"] in ("yes", "**no**")
    # Every signature wrk was answered for is stored (and the two the harness made to measure
    # the answers), and the kept counts agree with the rows.
    signed = data["rows"][0]["ours"]["requests"]
    assert data["signatures_stored"] >= signed + 2
    assert data["integrity_problems"] == []
    assert data["settings"]["rounds"] == 2 and data["rows"][0]["ours"]["seconds"] >= 2  # both rounds counted
    assert data["machine"]["nproc"] >= 1 and data["machine"]["python"]
    assert data["scale"]["large"]["signatures"] == 1000
    assert data["scale"]["large"]["export_cli"]["peak_mb"] > 0

    text = report.read_text()
    # Hand-written text around the markers survives; the figures between them are replaced.
    assert text.startswith("# Benchmarks\n\nWhat we changed, written by hand.")
    assert "More notes." in text and "old figures" not in text
    assert text.count("<!-- benchmarks.run:begin -->") == 1
    assert "| Signing, form → JSON (enhanced form) |" in text and "With our headers" in text
    assert "| Counter `/api/pledges/{slug}/count` |" in text
    assert "<!-- benchmarks.scale:begin -->" in text and "1,000 signatures" in text
    assert "nproc" in done.stdout or "CPUs" in done.stdout


def test_rounds_pool_into_one_p99_over_all_their_requests() -> None:
    """p99 of several rounds is over all their requests: neither the worst round's nor an average."""
    tail = [float(ms) for ms in range(100)]  # p90.0 → 0 ms … p99.0 → 90 ms … p99.9 → 99 ms
    calm = WrkResult(1000, 5.0, {}, {"p50": 1.0, "p99": 90.0}, 1.0, tail)
    stalled = WrkResult(1000, 5.0, {}, {"p50": 1.0, "p99": 900.0}, 1.0, [ms * 10 for ms in tail])
    assert WrkResult.combined([calm]).latency_ms["p99"] == 90.0
    assert WrkResult.combined([calm, calm]).latency_ms["p99"] == 90.0
    pooled = WrkResult.combined([calm, stalled])
    assert pooled.latency_ms["p99"] == 810.0  # 0.1% of the calm round and 1.9% of the other are slower
    assert pooled.requests == 2000 and pooled.seconds == 10.0
    no_tail = WrkResult(1000, 5.0, {}, {"p50": 1.0, "p99": 50.0})
    assert WrkResult.combined([calm, no_tail]).latency_ms["p99"] == 90.0  # the worst, when one lacks a tail


def test_signing_with_confirmation_and_webhooks_on_is_measured_and_every_message_arrives(tmp_path: Path) -> None:
    figures = tmp_path / "delivery.json"
    run_benchmark(
        "delivery", "--rounds", "1", "--duration", "1", "--connections", "4", "--json", str(figures), timeout=600
    )
    data = json.loads(figures.read_text())
    assert [row["mode"] for row in data["rows"]] == ["off", "confirm", "webhook"]
    assert all(row["rps"] > 0 for row in data["rows"])
    # The run fails unless each of these arrived; some did.
    assert data["emails"] > 0 and data["webhooks"] > 0


def test_the_in_process_signing_measure_runs_and_counts_commits() -> None:
    done = run_benchmark("inprocess", "--rounds", "1", "--signatures", "64")
    assert "µs a signature" in done.stdout and "signatures each" in done.stdout
