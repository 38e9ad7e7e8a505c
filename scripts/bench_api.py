"""The partner API's speed at scale: `make bench-api` (or `python scripts/bench_api.py --sizes 100000`).

For each size, on the benchmark's own database (filled as `scripts/benchmark.py` fills it, or reused
with --keep):

1. a page of 100 cases in this process, through Django's test client with a partner's key, beside
   the same rows read by one raw SQL query and written out by `json.dumps` (target: the median within
   2× of the raw one);
2. gunicorn on loopback, started here with its production settings file and --workers processes,
   and --clients threads that each ask for pages of 100 cases over a kept-alive connection for
   --seconds: requests per second and the spread of the answers' times (p50, p95, p99).

The clients run in this process on the same machine as the server and the database, so the figures
are what the whole machine does, not the server alone; the load average is printed beside them. The
rate limit is raised for the run (API_RATE_LIMIT), which otherwise stops a load test in its first
second.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# First: it sets the environment Django reads when it is set up.
from scripts import bench_common
from scripts.bench_common import Results, Spread, fmt_ms

ROOT = bench_common.ROOT
PAGE = "/api/v1/cases/?page_size=100"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_gunicorn(port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    # Each worker with its pool of database connections, as production runs (the benchmark's own
    # process goes without, for its fill drops and makes databases).
    env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver", "API_RATE_LIMIT": "100000000/minute",
           "WEB_CONCURRENCY": str(workers), "DATABASE_POOL": "true"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn stopped at start: {log.read_text()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health/live")
            connection.getresponse().read()
            connection.close()
            return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise RuntimeError("gunicorn did not answer within 60 s")


def load(port: int, key: str, clients: int, seconds: float) -> tuple[list[float], int, float]:
    """`clients` threads asking for the page until the time is up; every answer's time in ms, the
    number of answers that were not 200, and the seconds the run took."""
    times: list[float] = []
    failures = [0]
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        mine: list[float] = []
        bad = 0
        start.wait()
        while time.perf_counter() < stop_at[0]:
            began = time.perf_counter()
            connection.request("GET", PAGE, headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append((time.perf_counter() - began) * 1000)
            if response.status != 200:
                bad += 1
        connection.close()
        with lock:
            times.extend(mine)
            failures[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    return times, failures[0], time.perf_counter() - began


def measure_load(key: str, *, clients: int, seconds: float, workers: int) -> str:
    port = free_port()
    log = Path(os.environ["MEDIA_ROOT"]) / "gunicorn.log"
    server = start_gunicorn(port, workers, log)
    try:
        load(port, key, clients, 2.0)  # warm every worker: imports, connections, the first queries
        times, failures, took = load(port, key, clients, seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    spread = Spread(times)
    p99 = bench_common.percentile(times, 0.99)
    line = (f"{clients} clients, gunicorn with {workers} workers, {seconds:.0f} s: {len(times) / took:.1f} requests/s, "
            f"p50 {fmt_ms(spread.median)}, p95 {fmt_ms(spread.p95)}, p99 {fmt_ms(p99)} "
            f"({len(times)} answers, {failures} not 200; load average {os.getloadavg()[0]:.2f})")
    print("  " + line, flush=True)
    if failures:
        print(f"  gunicorn's log: {log.read_text()[-1500:]}", flush=True)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="children in the database, comma-separated")
    parser.add_argument("--entries-per-child", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--keep", action="store_true", help="reuse the database if the last fill was of this size")
    parser.add_argument("--runs", type=int, default=30, help="requests timed in this process")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2)
    args = parser.parse_args()

    import django

    django.setup()
    from core.warmup import warm_and_freeze
    from scripts import bench_fill, bench_reads
    from scripts.bench_sql import Raw

    url = bench_common.DATABASE_URL
    summary: list[str] = []
    for size in (int(part) for part in args.sizes.split(",")):
        print(f"\n== the API at {size:,} children ==", flush=True)
        bench_fill.ensure_filled(url, size=size, entries_per_child=args.entries_per_child, seed=args.seed,
                                 keep=args.keep)
        # As a web worker is made ready (config/wsgi.py): the views imported, start-up objects frozen.
        print(f"  {warm_and_freeze():,} start-up objects frozen, as config/wsgi.py does in each web worker", flush=True)
        raw = Raw(url)
        results = Results()
        key = bench_reads.measure_api(results, raw, args.runs)
        raw.close()
        row = results.rows[0]
        summary.append(f"{size:,} children, in process: product {row.figure}; raw {row.baseline}; {row.ratio} "
                       f"({'met' if row.met else 'MISSED'}: {row.target})")
        summary.append(f"{size:,} children, over HTTP: "
                       + measure_load(key, clients=args.clients, seconds=args.seconds, workers=args.workers))
    print("\n" + "\n".join(summary), flush=True)
    print(json.dumps({"machine_cores": os.cpu_count()}), flush=True)


if __name__ == "__main__":
    main()
