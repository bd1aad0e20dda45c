"""Load on the web studio: N concurrent sessions, each stepping its own story through the real server.

Starts `recurrentgpt serve` (uvicorn, real HTTP on 127.0.0.1) with the scripted model, so the
figures are the server's and the store's cost, not a model's. Each session creates a story, then
writes K paragraphs with POST /api/stories/{id}/step (server-sent events, `expected_head` set), reading
each stream to its `done` event. Afterwards every story is checked on its own: its path must be exactly
the opening it was created with followed by the nodes its steps returned, in order (nothing lost,
nothing extra). Creations that failed are counted too. Bounded: a fixed number of requests, a timeout
on each. Exits 1 if any creation, step or story check failed.

    .venv/bin/python bench/load_web.py [--sessions 50] [--steps 5] [--db postgresql://…] [--workers 2]
    .venv/bin/python bench/load_web.py --quick      # 10 sessions × 3 steps
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
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _common import SRC, wait_for_quiet, write_results

HEADERS = {"X-Requested-With": "recurrentgpt-bench", "Content-Type": "application/json"}


@dataclass
class Session:
    """What one session did, as the server told it."""

    story_id: str | None = None  # None: the creation failed
    opening: list[str] = field(default_factory=list)  # node ids of the path right after creation
    written: list[str] = field(default_factory=list)  # node ids the step streams returned, in order
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


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


def session(base: str, steps: int, out: Session) -> None:
    with httpx.Client(base_url=base) as client:
        try:
            created = read_stream(client, "/api/stories", {"genre": "fantasy", "topic": "load test",
                                                            "settings": {"opening_paragraphs": 1}})
            out.story_id = created["story"]["id"]
        except Exception as e:  # every failure is counted and reported, none stops the run
            out.errors.append(f"create: {type(e).__name__}: {e}")
            return
        try:
            out.opening = [n["id"] for n in client.get(f"/api/stories/{out.story_id}", timeout=60).json()["path"]]
            head = out.opening[-1]
            for _ in range(steps):
                t = time.perf_counter()
                done = read_stream(client, f"/api/stories/{out.story_id}/step",
                                   {"plan_index": 0, "expected_head": head})
                out.latencies.append(time.perf_counter() - t)
                head = done["node"]["id"]
                out.written.append(head)
        except Exception as e:
            out.errors.append(f"step: {type(e).__name__}: {e}")


def check_story(client: httpx.Client, s: Session) -> str | None:
    """None if the story's path is exactly its opening plus the nodes its steps returned; else what is
    wrong. (A step that failed is counted among the errors; here only what the store kept is checked.)"""
    try:
        path = [n["id"] for n in client.get(f"/api/stories/{s.story_id}", timeout=60).json()["path"]]
    except Exception as e:
        return f"{s.story_id}: could not be read back: {type(e).__name__}: {e}"
    expected = s.opening + s.written
    if path != expected:
        return (f"{s.story_id}: path has {len(path)} nodes, expected {len(expected)} "
                f"(missing {len(set(expected) - set(path))}, unexpected {len(set(path) - set(expected))})")
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=None, help="concurrent sessions (default 50; --quick: 10)")
    ap.add_argument("--steps", type=int, default=None, help="paragraphs per session (default 5; --quick: 3)")
    ap.add_argument("--db", default=None, help="library (default: a fresh SQLite file)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sessions_n = args.sessions or (10 if args.quick else 50)
    steps = args.steps or (3 if args.quick else 5)
    load_before = wait_for_quiet()
    tmp = tempfile.TemporaryDirectory()
    db = args.db or str(Path(tmp.name) / "load.db")
    port = free_port()
    cmd = [sys.executable, "-m", "recurrentgpt", "--db", db, "--model", "scripted", "--embedder", "hash",
           "serve", "--port", str(port)] + (["--workers", str(args.workers)] if args.workers > 1 else [])
    # the server measures the same code as the rest of the benchmarks (RECURRENTGPT_SRC / --snapshot)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    server_log = open(Path(tmp.name) / "server.log", "w+b")  # a file, not a pipe nobody reads (it would fill)
    server = subprocess.Popen(cmd, stdout=server_log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/api/info", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        sessions = [Session() for _ in range(sessions_n)]
        threads = [threading.Thread(target=session, args=(base, steps, s)) for s in sessions]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        elapsed = time.perf_counter() - started
        created = [s for s in sessions if s.story_id is not None]
        with httpx.Client(base_url=base) as client:
            problems = {s.story_id: check_story(client, s) for s in created}
        wrong = [p for p in problems.values() if p]
    finally:
        server.terminate()
        server.wait(timeout=30)
        server_log.seek(0)
        server_tail = server_log.read().decode(errors="replace")[-2000:]
        server_log.close()
        tmp.cleanup()
    latencies = sorted(x for s in sessions for x in s.latencies)
    errors = [e for s in sessions for e in s.errors]
    results = {
        "quick": args.quick,
        "load_average_before": load_before,
        "sessions": sessions_n,
        "steps_per_session": steps,
        "workers": args.workers,
        "store": "postgresql" if db.startswith("postgres") else "sqlite",
        "creations_ok": len(created),
        "creations_failed": sessions_n - len(created),
        "steps_ok": len(latencies),
        "steps_expected": sessions_n * steps,
        "errors": len(errors),
        "error_samples": errors[:5],
        "stories_checked": len(created),
        "stories_wrong": len(wrong),
        "stories_complete": sum(1 for s in created if len(s.written) == steps and not problems[s.story_id]),
        "wrong_samples": wrong[:5],
        "seconds": round(elapsed, 2),
        "steps_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1) if latencies else None,
    }
    print(json.dumps(results, indent=2))
    if errors or wrong or results["creations_failed"]:
        print(f"the server's last output:\n{server_tail}", file=sys.stderr)
    write_results(f"load_web_{results['store']}_{args.workers}w", results)
    sys.exit(1 if errors or wrong or results["creations_failed"] else 0)


if __name__ == "__main__":
    main()
