"""Load on the web studio: N concurrent sessions, each stepping its own story through the real server.

Starts `recurrentgpt serve` (uvicorn, real HTTP on 127.0.0.1) with the scripted model, so the
figures are the server's and the store's cost, not a model's. Each session creates a story, then
writes K paragraphs with POST /api/stories/{id}/step (server-sent events, `expected_head` set), reading
each stream to its `done` event. Afterwards every story is checked: exactly K paragraphs after the
opening, nothing lost. Bounded: a fixed number of requests, a timeout on each.

    .venv/bin/python bench/load_web.py [--sessions 50] [--steps 5] [--db postgresql://…] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HEADERS = {"X-Requested-With": "recurrentgpt-bench", "Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_stream(client: httpx.Client, url: str, body: dict) -> dict:
    """POST and read server-sent events until `done` (returned) or `error` (raised)."""
    event = None
    with client.stream("POST", url, json=body, headers=HEADERS, timeout=60) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.read()[:200]!r}")
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("done", "error"):
                data = json.loads(line[5:])
                if event == "error":
                    raise RuntimeError(data.get("error"))
                return data
    raise RuntimeError("stream ended without done")


def session(base: str, steps: int, latencies: list[float], errors: list[str], stories: list[str], lock) -> None:
    with httpx.Client(base_url=base) as client:
        try:
            created = read_stream(client, "/api/stories", {"genre": "fantasy", "topic": "load test",
                                                            "settings": {"opening_paragraphs": 1}})
            story = created["story"]
            head = story["head_id"]
            with lock:
                stories.append(story["id"])
            for _ in range(steps):
                t = time.perf_counter()
                done = read_stream(client, f"/api/stories/{story['id']}/step",
                                   {"plan_index": 0, "expected_head": head})
                head = done["node"]["id"]
                with lock:
                    latencies.append(time.perf_counter() - t)
        except Exception as e:  # every failure is counted and reported, none stops the run
            with lock:
                errors.append(f"{type(e).__name__}: {e}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--db", default=None, help="library (default: a fresh SQLite file)")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    db = args.db or str(Path(tmp.name) / "load.db")
    port = free_port()
    cmd = [sys.executable, "-m", "recurrentgpt", "--db", db, "--model", "scripted", "--embedder", "hash",
           "serve", "--port", str(port)] + (["--workers", str(args.workers)] if args.workers > 1 else [])
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/api/info", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        latencies: list[float] = []
        errors: list[str] = []
        stories: list[str] = []
        lock = threading.Lock()
        threads = [threading.Thread(target=session, args=(base, args.steps, latencies, errors, stories, lock))
                   for _ in range(args.sessions)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        elapsed = time.perf_counter() - started
        lost = 0
        with httpx.Client(base_url=base) as client:
            for story_id in stories:
                path = client.get(f"/api/stories/{story_id}").json()["path"]
                lost += (1 + args.steps) - len(path)
        latencies.sort()
        results = {
            "sessions": args.sessions,
            "steps_per_session": args.steps,
            "workers": args.workers,
            "store": "postgresql" if db.startswith("postgres") else "sqlite",
            "steps_ok": len(latencies),
            "errors": len(errors),
            "error_samples": errors[:5],
            "lost_steps": lost,
            "seconds": round(elapsed, 2),
            "steps_per_second": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
            "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1) if latencies else None,
            "cpus": os.cpu_count(),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        tmp.cleanup()
    print(json.dumps(results, indent=2))
    name = f"load_web_{results['store']}_{args.workers}w.json"
    (Path(__file__).parent / "results" / name).write_text(json.dumps(results, indent=2) + "\n")
    sys.exit(1 if results["errors"] or results["lost_steps"] else 0)


if __name__ == "__main__":
    main()
