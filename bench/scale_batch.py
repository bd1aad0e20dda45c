"""Many stories at once against an inference server with a fixed latency, and store throughput.

A stand-in OpenAI-compatible server on 127.0.0.1 answers every call after a fixed delay (default
200 ms) with a well-formed answer for the request's schema, streamed as server-sent events, like a
GPU server whose batch is never full. `recurrentgpt batch` logic then writes stories at concurrency
1, 8, 32 and 64 over SQLite and PostgreSQL. Also: store operations per second for both stores.

    .venv/bin/python bench/scale_batch.py [--latency 0.2] [--pg postgresql://…] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from _common import wait_for_quiet, write_results  # first: it puts the measured src/ (RECURRENTGPT_SRC) on the path

from recurrentgpt import Loom, ScriptedModel, Settings
from recurrentgpt.batch import read_jobs, run_batch
from recurrentgpt.models.base import Request
from recurrentgpt.models.openai import OpenAIModel
from recurrentgpt.story import Node

SETTINGS = Settings(paragraph_sentences=4, memory_sentences=4, memory_words=80, plan_sentences=2, opening_paragraphs=1)


def start_server(latency: float) -> tuple[ThreadingHTTPServer, str]:
    inventor = ScriptedModel()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fmt = body.get("response_format") or {}
            if fmt.get("type") == "json_schema":  # behave like a llama.cpp server: json_object + schema only
                payload = b'{"error": {"message": "response_format json_schema not supported"}}'
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            text = inventor.complete(Request("", "", schema=fmt.get("schema"))).text
            time.sleep(latency)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(0, len(text), 64):
                chunk = {"choices": [{"delta": {"content": text[i : i + 64]}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True

        def log_message(self, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 512  # the listen backlog: like a real inference server's, not Python's default 5

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


class Databases:
    """Fresh libraries: an SQLite file in a temporary folder, or a fresh schema in PostgreSQL."""

    def __init__(self, pg_url: str | None):
        self.tmp = tempfile.TemporaryDirectory()
        self.pg_url = pg_url
        self.schemas: list[str] = []

    def new(self, kind: str) -> str:
        if kind == "sqlite":
            return str(Path(self.tmp.name) / f"{uuid.uuid4().hex}.db")
        import psycopg

        schema = "bench_" + uuid.uuid4().hex[:10]
        with psycopg.connect(self.pg_url, autocommit=True) as con:
            con.execute(f"CREATE SCHEMA {schema}")
        self.schemas.append(schema)
        return f"{self.pg_url}{'&' if '?' in self.pg_url else '?'}options=-csearch_path%3D{schema}"

    def close(self) -> None:
        if self.pg_url:
            import psycopg

            with psycopg.connect(self.pg_url, autocommit=True) as con:
                for schema in self.schemas:
                    con.execute(f"DROP SCHEMA {schema} CASCADE")
        self.tmp.cleanup()


def batch_throughput(url: str, db: str, concurrency: int, stories: int, steps: int) -> dict:
    model = OpenAIModel("bench", base_url=url, api_key="x", timeout=60)
    loom = Loom.open(db, model, "hash")
    lines = "\n".join(json.dumps({"genre": "fantasy", "topic": f"story {i}", "steps": steps}) for i in range(stories))
    summary = run_batch(loom, read_jobs(lines), concurrency=concurrency, settings=SETTINGS)
    loom.close()
    assert not summary.failures, summary.failures[:3]
    return {
        "concurrency": concurrency,
        "stories": stories,
        "calls": summary.usage.calls,
        "seconds": round(summary.seconds, 2),
        "stories_per_minute": round(stories / summary.seconds * 60, 1),
        "calls_per_second": round(summary.usage.calls / summary.seconds, 1),
    }


def store_ops(db: str, n: int) -> dict:
    """Commits of one step (node + full text + vectors) per second, and path reads per second."""
    loom = Loom.open(db, ScriptedModel(), "hash")
    info = loom.new_story("fantasy", "store benchmark", settings=SETTINGS)
    parent = loom.node(info.id)
    vec = np.ones((1, 256), dtype=np.float32) / 16
    started = time.perf_counter()
    for i in range(n):
        node = Node(id=f"s{uuid.uuid4().hex[:11]}", story_id=info.id, parent_id=parent.id, depth=parent.depth + 1,
                    kind="step", plan="p", paragraph=f"Paragraph {i} about the harbour.", rationale="r",
                    short_memory="m", plans=("a", "b", "c"), meta={}, created_at=time.time())
        loom.store.add_nodes(info.id, [node], {node.id: vec}, "hash-256", move_head_from=parent.id)
        parent = node
    writes = n / (time.perf_counter() - started)
    samples = []
    for _ in range(50):
        t = time.perf_counter()
        loom.store.get_node(parent.id)
        loom.store.path_seqs(parent.id)
        samples.append(time.perf_counter() - t)
    loom.close()
    return {"step_commits_per_second": round(writes, 1),
            "node_read_plus_path_ms": round(statistics.median(samples) * 1000, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--pg", default=os.environ.get("RECURRENTGPT_TEST_PG"), help="PostgreSQL URL (optional)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args()
    load_before = wait_for_quiet()
    server, url = start_server(args.latency)
    dbs = Databases(args.pg)
    kinds = ["sqlite"] + (["postgres"] if args.pg else [])
    levels = [1, 8] if args.quick else [1, 8, 32, 64]
    results: dict = {"quick": args.quick, "load_average_before": load_before, "latency_s": args.latency,
                     "steps_per_story": args.steps, "calls_per_story": 1 + 2 * args.steps, "batch": {}, "store": {}}
    try:
        for kind in kinds:
            rows = []
            for c in levels:
                stories = 8 if c == 1 else max(32, 2 * c)
                rows.append(batch_throughput(url, dbs.new(kind), c, stories, args.steps))
                r = rows[-1]
                print(f"{kind:8} concurrency {c:3}: {r['stories_per_minute']:8.1f} stories/min "
                      f"({r['calls_per_second']} calls/s, {r['stories']} stories in {r['seconds']} s)", flush=True)
            results["batch"][kind] = rows
            results["store"][kind] = store_ops(dbs.new(kind), 300 if args.quick else 1000)
            print(f"{kind:8} store: {results['store'][kind]}", flush=True)
    finally:
        dbs.close()
        server.shutdown()
    ideal = 60 / (results["calls_per_story"] * args.latency)
    results["ideal_stories_per_minute_per_concurrent_story"] = round(ideal, 1)
    for rows in results["batch"].values():  # how close each level came to `concurrency` stories in flight all the time
        for r in rows:
            r["share_of_ideal"] = round(r["stories_per_minute"] / (ideal * r["concurrency"]), 3)
    print(f"ideal: {ideal:.1f} stories/min per story in flight")
    write_results("scale_batch", results)


if __name__ == "__main__":
    main()
