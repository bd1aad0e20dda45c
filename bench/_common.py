"""Shared helpers for the benchmarks: machine facts, statistics, results files, fast story building.

Benchmarks are scripts, not tests: each prints its figures and writes bench/results/<name>.json.
Run them one at a time with `nice -n 10` on a shared machine.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PLOTS = ROOT / "docs" / "bench"
WORK = Path(os.environ.get("RECURRENTGPT_BENCH_WORK", "/tmp/recurrentgpt-bench"))

# The code under test: this checkout's src/ (even without `pip install -e .`), or RECURRENTGPT_SRC, e.g. a
# clean `git archive` of one commit when others are editing the working tree while the benchmarks run.
SRC = Path(os.environ.get("RECURRENTGPT_SRC", ROOT / "src")).resolve()
sys.path.insert(0, str(SRC))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    import numpy

    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "gpu": "none",
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "code": {**code_version(), "imported_from": imported_from()},
        "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def shown(path: Path) -> str:
    """A path as a result file records it: relative to the checkout, never a path of the machine it ran on."""
    try:
        return str(path.resolve().relative_to(ROOT.resolve()))
    except ValueError:
        return "(outside the checkout)"


def code_version() -> dict[str, Any]:
    """Which code was measured: the commit, and whether its src/ differed from that commit."""
    marker = SRC / "COMMIT"  # written next to an exported snapshot
    if marker.exists():
        return {"src": shown(SRC), "commit": marker.read_text().strip(), "dirty": []}
    if SRC != (ROOT / "src").resolve():  # another copy, not an exported snapshot: its commit is unknown
        return {"src": shown(SRC), "commit": None}
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"], capture_output=True,
                               text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return {"src": shown(SRC)}
    return {"src": shown(SRC), "commit": commit, "dirty": [d[3:] for d in dirty if d.strip()]}


def imported_from() -> str | None:
    """Where this process actually imported recurrentgpt from (None if it has not): shows that
    RECURRENTGPT_SRC / --snapshot took effect rather than an installed copy."""
    module = sys.modules.get("recurrentgpt")
    return shown(Path(module.__file__).parent) if module and module.__file__ else None


def wait_for_quiet(threshold: float = 1.5, max_wait: float | None = None) -> list[float]:
    """Wait (bounded) until the 1-minute load average drops below ``threshold``: the machine is shared.
    Returns the load averages when the benchmark starts, to be recorded with its results.
    The bound is 240 s, or $RECURRENTGPT_BENCH_MAX_WAIT seconds."""
    if max_wait is None:
        max_wait = float(os.environ.get("RECURRENTGPT_BENCH_MAX_WAIT", "240"))
    started = time.perf_counter()
    while os.getloadavg()[0] >= threshold and time.perf_counter() - started < max_wait:
        time.sleep(10)
    load = [round(x, 2) for x in os.getloadavg()]
    if load[0] >= threshold:
        print(f"(the machine is busy: load {load}; numbers will be slower than on a quiet machine)")
    return load


def median(xs: Iterable[float]) -> float:
    xs = list(xs)
    return float(statistics.median(xs)) if xs else float("nan")


def pct(xs: Iterable[float], q: float) -> float:
    xs = list(xs)
    return float(np.percentile(np.asarray(xs, dtype=float), q)) if xs else float("nan")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value


def rss_mib() -> float:
    """Resident memory of this process, MiB (from /proc, no psutil needed)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def write_results(name: str, data: dict[str, Any], path: Path | str | None = None) -> Path:
    """Write ``data`` with the machine, its load and the commit measured (see ``machine``) to
    ``path``, by default bench/results/<name>.json, or <name>_quick.json when ``data["quick"]`` is true
    (a short run never replaces the full run's file). Also for scripts outside bench/ (e.g.
    scripts/stress_crash.py): put bench/ on sys.path and import this module."""
    path = Path(path) if path is not None else RESULTS / f"{name}{'_quick' if data.get('quick') else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "machine": machine(), **data}
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
    shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    print(f"\nwrote {shown}")
    return path


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON: {type(x)}")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (also readable in a terminal)."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


# -- building big stories fast ---------------------------------------------------------------------


def fill_vectors(base: np.ndarray, n: int, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors made from ``base`` (real embeddings) by cycling and perturbing them.

    Embedding 100k+ paragraphs with MiniLM on 2 cores would take hours, so big stories reuse a few
    hundred real vectors, each copy nudged by Gaussian noise and renormalised (so no two are equal).
    """
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    step = 65_536
    for start in range(0, n, step):
        stop = min(n, start + step)
        idx = np.arange(start, stop) % len(base)
        block = base[idx] + rng.standard_normal((stop - start, base.shape[1]), dtype=np.float32) * (
            noise / np.sqrt(base.shape[1])
        )
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


def build_chain(
    store: Any,
    story_id: str,
    n: int,
    text: Callable[[int], str],
    vectors: np.ndarray | None,
    embedder_name: str,
    batch: int = 20_000,
) -> list[str]:
    """Write a story of ``n`` paragraphs (one chain, node i the parent of node i+1) straight into a
    SQLiteStore with executemany, in one transaction. Returns the node ids in story order.

    This bypasses ``create_story`` (which inserts row by row) only for speed at 100k-1M nodes; the rows
    are the same as the store's own (its column list is reused), so the memory code reads them as usual.
    """
    from recurrentgpt.story import Settings, StoryInfo

    try:  # the column list lives in store/sql.py (shared by dialects) or, in older code, store/sqlite.py
        from recurrentgpt.store.sql import NODE_COLUMNS as columns
    except ImportError:
        from recurrentgpt.store.sqlite import _NODE_COLUMNS as columns

    now = time.time()
    info = StoryInfo(
        id=story_id, title="Benchmark", genre="literary", topic="a harbor town", premise="", outline="",
        mode="writer", settings=Settings(), profile={}, head_id=None, created_at=now, updated_at=now,
    )
    store.create_story(info, [], {}, embedder_name)
    ids = [f"{story_id}-{i:07d}" for i in range(n)]
    present = {row[1] for row in store.db.execute("PRAGMA table_info(nodes)")}  # an older schema has fewer
    columns = ", ".join(c for c in (c.strip() for c in columns.split(",")) if c in present)
    marks = ",".join("?" * len(columns.split(",")))
    # columns after ``pruned`` (the synopsis, since schema 4) are left empty
    extra = ("",) * (len(columns.split(",")) - 13)
    db = store.db  # the sqlite3 connection; the store's own transaction wraps the whole build
    with store._tx():
        first_seq = (db.execute("SELECT COALESCE(MAX(seq), 0) FROM nodes").fetchone()[0]) + 1
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            texts = [text(i) for i in range(start, stop)]
            db.executemany(
                f"INSERT INTO nodes (seq, {columns}) VALUES (?, {marks})",
                (
                    (first_seq + i, ids[i], story_id, ids[i - 1] if i else None, i, "step", "", texts[i - start],
                     "", "", "[]", "{}", now, 0, *extra)
                    for i in range(start, stop)
                ),
            )
            db.executemany(
                "INSERT INTO paragraphs_fts (rowid, paragraph, story_id) VALUES (?,?,?)",
                ((first_seq + i, texts[i - start], story_id) for i in range(start, stop)),
            )
            if vectors is not None:
                db.executemany(
                    "INSERT INTO vectors (node_seq, story_id, embedder, chunk, vector) VALUES (?,?,?,?,?)",
                    ((first_seq + i, story_id, embedder_name, 0, vectors[i].tobytes()) for i in range(start, stop)),
                )
        db.execute("UPDATE stories SET head_id=? WHERE id=?", (ids[-1], story_id))
    return ids


def real_base_vectors(embedder: Any, count: int, text: Callable[[int], str]) -> np.ndarray:
    """``count`` real embeddings (one per paragraph) to seed ``fill_vectors``; cached on disk."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"base-{embedder.name.replace(':', '_').replace('/', '_')}-{count}.npy"
    if path.exists():
        return np.load(path)
    matrix = np.vstack([embedder.embed([text(i)]) for i in range(count)]).astype(np.float32)
    np.save(path, matrix)
    return matrix


class Probe:
    """Accumulates the wall time spent in chosen methods of chosen objects (public interfaces only),
    so a benchmark can split one call into parts without touching the code under test."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def wrap(self, obj: Any, method: str, label: str) -> None:
        original = getattr(obj, method)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.totals[label] = self.totals.get(label, 0.0) + time.perf_counter() - started

        setattr(obj, method, wrapper)

    def take(self) -> dict[str, float]:
        out, self.totals = self.totals, {}
        return out


def save_plot(fig: Any, name: str, quick: bool = False) -> Path:
    """docs/bench/<name>.png, or <name>_quick.png for a short run (which never replaces the full run's plot)."""
    PLOTS.mkdir(parents=True, exist_ok=True)
    path = PLOTS / f"{name}{'_quick' if quick else ''}.png"
    fig.savefig(path, dpi=110)
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def plt():
    """matplotlib without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    PLOTS.mkdir(parents=True, exist_ok=True)
    return pyplot
