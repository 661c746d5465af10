"""Benchmarks of the API (functions, not tests): `bench()` returns the measurements as a dict.

(a) bulk ingest with evaluation on SQLite: a generated company (`service.synthetic.generate`,
    BENCH_API_RECORDS records, default 20,000) uploaded file by file in arrival order through
    `POST /api/v1/uploads` (in-process ASGI), each upload stored AND evaluated on arrival with the
    stored records related to it; records/s = records stored / wall time. Goal ≥ 2,000/s.
(b) single-record submit latency: a real `zhidu serve` (uvicorn) subprocess on 127.0.0.1 over the
    same database; clients submit one record per request (a new expense claim, then its approval,
    which judges the claim again): one client alone; BENCH_API_CLIENTS (default 50) concurrent
    clients in a closed loop (bounded by BENCH_API_REQUESTS, default 1,000, and BENCH_API_SECONDS,
    default 120); and the same clients paced to BENCH_API_PACED_RATE requests/s in all (default
    10). p50/p99 in ms. Goal p99 ≤ 50 ms.

    python -m tests.bench_api          # prints the JSON
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RECORDS = int(os.environ.get("BENCH_API_RECORDS", "20000"))
CLIENTS = int(os.environ.get("BENCH_API_CLIENTS", "50"))
REQUESTS = int(os.environ.get("BENCH_API_REQUESTS", "1000"))
SECONDS = float(os.environ.get("BENCH_API_SECONDS", "120"))
PACED_RATE = float(os.environ.get("BENCH_API_PACED_RATE", "10"))  # requests/s, all clients together
# The order records reach a company's systems: master data, then documents, then their follow-ups.
ARRIVAL_ORDER = (
    "department",
    "supplier",
    "budget",
    "warehouse",
    "contract",
    "purchase_requisition",
    "purchase_order",
    "goods_receipt",
    "payment",
    "expense_claim",
    "approval",
    "inventory_count",
    "complaint",
    "hire",
    "performance_review",
)


def _admin_token(url: str) -> str:
    from service.accounts import flows
    from service.db.base import engine_for, session_factory

    engine = engine_for(url)
    try:
        with session_factory(engine)() as session:
            user = flows.create_user(session, username="bench", role="supervisor", actor="system")
            issued = flows.issue_token(session, user_id=user.id, name="bench", actor="system")
    finally:
        engine.dispose()
    assert issued is not None
    return issued[1]


def bulk_ingest(folder: Path, url: str, token: str) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from service.api import create_app
    from service.evaluation.runtime import runtime_for
    from service.settings import Settings
    from service.synthetic import generate

    manifest = generate(folder / "company", records=RECORDS, seed=1)
    app = create_app(Settings(database_url=url))
    as_of = datetime.fromisoformat(manifest.as_of)
    app.state.clock = lambda: as_of
    runtime_for(app.state.settings)  # the policy library loads once per process, before timing
    headers = {"Authorization": f"Bearer {token}"}
    per_type: dict[str, dict[str, Any]] = {}
    stored = opened = closed = 0
    with TestClient(app) as client:
        start = time.perf_counter()
        for record_type in ARRIVAL_ORDER:
            path = folder / "company" / f"{record_type}.csv"
            began = time.perf_counter()
            response = client.post(
                "/api/v1/uploads", files={"file": (path.name, path.read_bytes(), "text/csv")}, headers=headers
            )
            if response.status_code != 200:
                raise RuntimeError(f"{record_type}: {response.status_code} {response.text[:500]}")
            body = response.json()
            created = body["counts"]["created"]
            stored += created
            opened += len(body["violations"]["opened"]) + len(body["violations"]["reopened"])
            closed += len(body["violations"]["closed"])
            per_type[record_type] = {
                "records": created,
                "seconds": round(time.perf_counter() - began, 3),
                "judged": body["evaluation"]["judged"],
            }
        seconds = time.perf_counter() - start
    app.state.engine.dispose()
    return {
        "records": stored,
        "seconds": round(seconds, 2),
        "records_per_s": round(stored / seconds),
        "violations_opened": opened,
        "violations_closed": closed,
        "by_type": per_type,
        "goal_records_per_s": 2000,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(url: str) -> Iterator[str]:
    """`zhidu serve` in a subprocess on a free port; its base URL once it answers."""
    port = _free_port()
    env = {**os.environ, "ZHIDU_DATABASE_URL": url, "ZHIDU_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"zhidu serve exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("zhidu serve did not answer within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _claim(n: int) -> dict[str, Any]:
    return {
        "id": f"BENCH{n:07d}",
        "dept": "D01",
        "applicant": "张三",
        "category": "travel",
        "amount": "880.00",
        "invoice_no": f"FPB{n:07d}",
        "invoice_count": 1,
        "submitted_at": "2026-03-01T10:00:00+08:00",
    }


def _approval(n: int) -> dict[str, Any]:
    return {
        "id": f"BAP{n:07d}",
        "record_type": "expense_claim",
        "record_id": f"BENCH{n:07d}",
        "step": "dept_head",
        "approver": "王经理",
        "decision": "approved",
        "decided_at": "2026-03-02T10:00:00+08:00",
    }


def submit_latency(
    base: str, token: str, *, clients: int, requests: int, first: int, interval_s: float = 0.0
) -> dict[str, Any]:
    """`clients` threads, each with its own connection, submitting `requests` records in all
    (claims and their approvals, alternately); each waits `interval_s` between its requests
    (0: closed loop, the next request as soon as the answer is back)."""
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    per_client = max(1, requests // clients)
    stop_at = time.monotonic() + SECONDS
    start = threading.Barrier(clients)

    def client(index: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            start.wait()
            if interval_s:
                time.sleep(interval_s * index / clients)  # spread the clients over the interval
            for i in range(per_client):
                if time.monotonic() > stop_at:
                    return
                n = first + index * per_client + i // 2
                path, body = (
                    ("/records/expense_claim", _claim(n))
                    if i % 2 == 0
                    else ("/records/approval", _approval(n))
                )
                began = time.perf_counter()
                response = http.post(path, json=body)
                elapsed = (time.perf_counter() - began) * 1000
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                if interval_s:
                    time.sleep(max(0.0, interval_s - elapsed / 1000))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "interval_s": interval_s,
        "requests": len(latencies),
        "failed": len(failures),
        "first_failure": failures[0] if failures else None,
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "max_ms": round(ordered[-1], 1),
        "requests_per_s": round(len(latencies) / wall, 1),
    }


def latencies(base: str, token: str) -> dict[str, Any]:
    """Three loads: one client alone (the service time), CLIENTS clients in a closed loop (the goal's
    setting: every client sends its next record as soon as it has an answer, so the server is
    saturated and the latency is mostly the queue), and CLIENTS clients pacing themselves to a
    total rate the server sustains (PACED_RATE requests/s)."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as warm:
        warm.post("/records/expense_claim", json=_claim(0)).raise_for_status()  # the library loads
    alone = submit_latency(base, token, clients=1, requests=100, first=1_000_000)
    saturated = submit_latency(base, token, clients=CLIENTS, requests=REQUESTS, first=2_000_000)
    paced = submit_latency(
        base, token, clients=CLIENTS, requests=REQUESTS // 4, first=3_000_000, interval_s=CLIENTS / PACED_RATE
    )
    return {"one_client": alone, "closed_loop": saturated, "paced": paced, "goal_p99_ms": 50}


def bench() -> dict[str, Any]:
    """(a) bulk ingest with evaluation on SQLite and (b) submit latency with concurrent clients."""
    from service.db.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="zhidu-bench-api-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'bench.db'}"
        upgrade(url)
        token = _admin_token(url)
        results: dict[str, Any] = {"bulk_ingest": bulk_ingest(folder, url, token)}
        with serve(url) as base:
            results["submit_latency"] = latencies(base, token)
    return results


if __name__ == "__main__":
    print(json.dumps(bench(), indent=2, ensure_ascii=False))
