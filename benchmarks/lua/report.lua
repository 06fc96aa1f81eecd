-- Appended to every scenario: one machine-readable line with the run's figures.
-- Latencies are wrk's, in microseconds; errors are counted separately from answers.
-- "tail" holds the latency at every tenth of a percentile from 90 to 99.9, so the harness can
-- pool several rounds into one p99 over all their requests.
function done(summary, latency, requests)
  local e = summary.errors
  local tail = {}
  for i = 900, 999 do
    table.insert(tail, string.format("%d", latency:percentile(i / 10)))
  end
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}, '
      .. '"tail_us": [%s], '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(tail, ", "),
    e.connect, e.read, e.write, e.status, e.timeout))
end
