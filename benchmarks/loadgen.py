"""A closed-loop HTTP load generator: N processes x M threads, one keep-alive connection each.

Standard library only, and each generator process is ``python -m benchmarks.loadgen`` (its job
on stdin, its results on stdout), so it starts in a fraction of a second even on a loaded
machine: it imports nothing of the exchange. Every thread sends its requests back to back on its
own ``http.client`` connection; a request's latency is its ``perf_counter`` time from sending to
the last byte read. The processes start together (a barrier: each says ``ready``, then all are
told ``go``), warm up, and count the answers that arrive inside one measured window.

An :class:`Endpoint` either cycles through its requests (reads, and writes the server makes
unique itself) or sends each exactly once (pre-signed statements: every one has its own nonce);
a thread that runs out of once-only requests stops, and the result says so.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None = None


@dataclass(frozen=True)
class Endpoint:
    name: str
    label: str
    expect: int  # the status of a successful answer
    token: str | None
    requests: tuple[Request, ...]
    once: bool = False


@dataclass(frozen=True)
class Load:
    """How hard to push: processes x threads connections, a warm-up, a measured window."""

    host: str
    port: int
    processes: int
    threads: int
    seconds: float
    warmup: float

    @property
    def connections(self) -> int:
        return self.processes * self.threads


def _thread(
    load: Load,
    endpoint: Endpoint,
    requests: Sequence[Request],
    window: tuple[float, float],
    out: dict[str, Any],
) -> None:
    headers = {"Content-Type": "application/json"}
    if endpoint.token:
        headers["Authorization"] = f"Bearer {endpoint.token}"
    connection = http.client.HTTPConnection(load.host, load.port, timeout=120)
    measure_from, until = window
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    sent = failures = 0
    exhausted = False
    i = 0
    while time.monotonic() < until:
        if endpoint.once and i >= len(requests):
            exhausted = True
            break
        request = requests[i % len(requests)]
        i += 1
        started = time.perf_counter()
        try:
            connection.request(request.method, request.path, body=request.body, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            connection.close()  # a dropped connection: count it, open another
            connection = http.client.HTTPConnection(load.host, load.port, timeout=120)
            failures += 1
            continue
        elapsed = time.perf_counter() - started
        sent += 1
        statuses[str(response.status)] += 1
        if measure_from <= time.monotonic() <= until:
            if response.status == endpoint.expect:
                latencies.append(elapsed)
            else:
                failures += 1
    connection.close()
    out.update(
        latencies=latencies, statuses=statuses, sent=sent, failures=failures, exhausted=exhausted
    )


def _requests_to_json(requests: Sequence[Request]) -> list[list[Any]]:
    return [[r.method, r.path, r.body.decode() if r.body is not None else None] for r in requests]


def _requests_from_json(rows: list[list[Any]]) -> list[Request]:
    return [Request(m, p, b.encode() if b is not None else None) for m, p, b in rows]


def _child() -> None:
    """``python -m benchmarks.loadgen``: one generator process. Reads its job (JSON, one line)
    from stdin, says ``ready``, waits for ``go``, runs its threads, prints the results (JSON)."""
    job = json.loads(sys.stdin.readline())
    load = Load(**job["load"])
    endpoint = Endpoint(**{**job["endpoint"], "requests": ()})
    slices = [_requests_from_json(rows) for rows in job["slices"]]
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    started, started_cpu = time.monotonic(), time.process_time()
    window = (started + load.warmup, started + load.warmup + load.seconds)
    outs: list[dict[str, Any]] = [{} for _ in slices]
    threads = [
        threading.Thread(target=_thread, args=(load, endpoint, part, window, out))
        for part, out in zip(slices, outs, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outs[0]["cpu_seconds"] = time.process_time() - started_cpu  # the whole process's
    print(json.dumps(outs), flush=True)


def run(load: Load, endpoint: Endpoint) -> dict[str, Any]:
    """Push ``endpoint`` for ``load.seconds``; per-request latencies (s) and counts."""
    n = load.connections
    if endpoint.once:  # each connection its own share: no request is sent twice
        slices = [list(endpoint.requests[i::n]) for i in range(n)]
    else:
        slices = [list(endpoint.requests) for _ in range(n)]
    described = {k: v for k, v in asdict(endpoint).items() if k != "requests"}
    root = str(Path(__file__).resolve().parent.parent)
    children = []
    try:
        for p in range(load.processes):
            child = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.loadgen"],
                cwd=root,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            children.append(child)
            assert child.stdin is not None
            job = {
                "load": asdict(load),
                "endpoint": described,
                "slices": [
                    _requests_to_json(part)
                    for part in slices[p * load.threads : (p + 1) * load.threads]
                ],
            }
            child.stdin.write(json.dumps(job) + "\n")
            child.stdin.flush()
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a load generator process failed to start")
        load_before = list(os.getloadavg())
        for child in children:  # the barrier: every process is ready, all go at once
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outs = []
        for child in children:
            assert child.stdout is not None
            outs.extend(json.loads(child.stdout.readline()))
            child.wait(timeout=60)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    statuses: Counter[str] = Counter()
    for out in outs:
        statuses.update(out["statuses"])
    return {
        "latencies": [x for out in outs for x in out["latencies"]],
        "sent": sum(out["sent"] for out in outs),
        "statuses": dict(sorted(statuses.items())),
        "failures": sum(out["failures"] for out in outs),
        "exhausted": any(out["exhausted"] for out in outs),
        "generator_cpu_seconds": sum(out.get("cpu_seconds", 0.0) for out in outs),
        "load_at_start": [round(x, 2) for x in load_before],
    }


if __name__ == "__main__":
    _child()
