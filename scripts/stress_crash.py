"""Crash safety: SIGKILL a process at random moments while it writes, then prove nothing was lost or torn.

A worker process loops one operation (step, regenerate, import a manuscript, export a tree, a step with the
story bible in auto mode and a writer's bible edit) against a
library as fast as it can; it is killed with SIGKILL after a random delay. The worker reports the phase it
is in (start-up, inside an operation, inside a write transaction or the export file's write, between
operations), so each kill's landing phase is recorded and the run reports their distribution. After each
kill the checker proves: PRAGMA integrity_check is ok; every node has its full-text row and its vectors (no
half step); every parent and head exists; an export file is either absent or complete; the story the
worker was writing (and the first and newest stories) opens and continues with a new step.

    .venv/bin/python scripts/stress_crash.py --trials 100        # prints a summary, writes JSON
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

OPS = ("step", "regenerate", "import", "export", "bible")
PHASES = ("start-up", "operation", "write", "between")
MANUSCRIPT = "\n\n".join(f"Paragraph {i} of an imported book, about the harbour at dawn." for i in range(60))
ROOT = Path(__file__).resolve().parent.parent


class PhaseReport:
    """The phase a worker is in, in a small file the parent reads after the kill. pwrite is one system call
    into the page cache, so a SIGKILL cannot tear it and it costs microseconds per operation."""

    WIDTH = 16

    def __init__(self, path: str | Path):
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def set(self, phase: str) -> None:
        os.pwrite(self.fd, phase.encode().ljust(self.WIDTH), 0)

    @staticmethod
    def read(path: str | Path) -> str:
        try:
            return Path(path).read_bytes().decode().strip() or "start-up"
        except FileNotFoundError:
            return "start-up"


def worker(db: str, op: str, workdir: str, story_id: str) -> None:
    phase = PhaseReport(Path(workdir) / "phase")
    from recurrentgpt import Loom, ScriptedModel
    from recurrentgpt.cli.write import write_atomically

    loom = Loom.open(db, ScriptedModel(), "hash")
    _report_write_transactions(loom, phase)
    i = 0
    while True:
        i += 1
        phase.set("operation")
        if op == "step":
            loom.step(story_id, i % 3)
        elif op == "regenerate":
            loom.regenerate(story_id, n=2)
        elif op == "import":
            loom.import_manuscript(MANUSCRIPT, genre="literary")
        elif op == "bible":  # the model's bible changes are part of the step's node; a writer's edit is a node
            from recurrentgpt.bible import Change

            loom.step(story_id, i % 3, bible="auto")
            loom.change_bible(story_id, [Change("add", f"Keeper {os.getpid()} {i}", facts=("Keeps the lamp.",))])
        elif op == "export":
            text = loom.export(story_id, "tree")
            phase.set("write")
            write_atomically(Path(workdir) / "tree.json", text)
        phase.set("between")


def _report_write_transactions(loom, phase: PhaseReport) -> None:
    """Mark the time spent inside the store's write transactions as the "write" phase (a measuring probe on
    the worker's own store object; the checker reads the database with plain sqlite3)."""
    store = getattr(loom, "store", None)
    if not hasattr(store, "_tx"):
        return  # another store layout: writes are then counted as "operation"
    original = store._tx

    @contextmanager
    def reporting_tx(*args, **kwargs):
        phase.set("write")
        try:
            with original(*args, **kwargs) as x:
                yield x
        finally:
            phase.set("operation")

    store._tx = reporting_tx


def check(db: str, workdir: str, story_id: str, op: str) -> list[str]:
    """Everything that must hold after a crash; returns the problems found (none, we hope).

    ``story_id`` is the story the step, regenerate and export workers write; an import worker writes a new
    story each time, so for imports the newest story is the one being written."""
    problems = []
    con = sqlite3.connect(db)
    if con.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
        problems.append("integrity_check failed")
    if con.execute("PRAGMA foreign_key_check").fetchall():
        problems.append("foreign key violations")
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    if q("SELECT count(*) FROM nodes n WHERE NOT EXISTS (SELECT 1 FROM paragraphs_fts f WHERE f.rowid = n.seq)"):
        problems.append("a node without its full-text row (half a step)")
    if q("SELECT count(*) FROM nodes n WHERE NOT EXISTS (SELECT 1 FROM vectors v WHERE v.node_seq = n.seq)"):
        problems.append("a node without its vectors (half a step)")
    if q("SELECT count(*) FROM paragraphs_fts f WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.seq = f.rowid)"):
        problems.append("a full-text row without its node")
    if q("SELECT count(*) FROM stories s WHERE s.head_id IS NULL "
         "OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = s.head_id)"):
        problems.append("a story whose head is missing")
    if q("SELECT count(*) FROM nodes c WHERE c.parent_id IS NOT NULL "
         "AND NOT EXISTS (SELECT 1 FROM nodes p WHERE p.id = c.parent_id)"):
        problems.append("a node whose parent is missing")
    con.close()
    export = Path(workdir) / "tree.json"
    if export.exists():
        try:
            json.loads(export.read_text())
        except json.JSONDecodeError:
            problems.append("a torn export file")
    from recurrentgpt import Loom, ScriptedModel

    loom = Loom.open(db, ScriptedModel(), "hash")
    stories = sorted(loom.stories(), key=lambda s: s.created_at)
    written = stories[-1].id if op == "import" else story_id
    # the story being written first, then the first and the newest (earlier imports, earlier checks)
    to_check = list(dict.fromkeys([written, stories[0].id, *(s.id for s in stories[-2:])]))
    for sid in to_check:
        try:
            loom.bible(sid)  # the canon materialises from whatever changes the nodes hold
            before = len(loom.path(sid))
            loom.step(sid, "After the crash, the story goes on.")
            if len(loom.path(sid)) != before + 1:
                problems.append(f"story {sid} did not continue")
        except Exception as e:  # any failure here is a finding, not a crash of the checker
            problems.append(f"story {sid} cannot continue: {type(e).__name__}: {e}")
    loom.close()
    return problems


def run(trials: int, seed: int = 0, max_delay: float = 1.5) -> dict:
    from recurrentgpt import Loom, ScriptedModel, Settings

    rng = random.Random(seed)
    results = {"trials": 0, "kills": 0, "by_operation": {op: 0 for op in OPS}, "problems": [], "seconds": 0.0}
    landed: list[tuple[str, str]] = []  # (operation, phase at the kill) per trial
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        db = str(Path(workdir) / "library.db")
        setup = Loom.open(db, ScriptedModel(), "hash")
        story_id = setup.new_story("fantasy", "crash test", settings=Settings(opening_paragraphs=2)).id
        setup.close()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        phase_file = Path(workdir) / "phase"
        for trial in range(trials):
            op = OPS[trial % len(OPS)]
            phase_file.unlink(missing_ok=True)  # no report yet = still starting up
            proc = subprocess.Popen([sys.executable, __file__, "--worker", db, op, workdir, story_id], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.3, max_delay))
            exited = proc.poll() is not None
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            phase = PhaseReport.read(phase_file)
            if exited:
                results["problems"].append(f"trial {trial}: worker died on its own: {proc.stderr.read()[-500:]!r}")
            else:
                landed.append((op, phase))
            results["kills"] += 0 if exited else 1
            results["trials"] += 1
            results["by_operation"][op] += 1
            for problem in check(db, workdir, story_id, op):
                results["problems"].append(f"trial {trial} ({op}, killed in {phase}): {problem}")
        con = sqlite3.connect(db)
        results["nodes_at_end"] = con.execute("SELECT count(*) FROM nodes").fetchone()[0]
        results["stories_at_end"] = con.execute("SELECT count(*) FROM stories").fetchone()[0]
        con.close()
    results["kills_by_phase"] = {p: sum(1 for _, q in landed if q == p) for p in PHASES}
    counts = Counter(landed)
    results["kills_by_operation_and_phase"] = {op: {p: counts[(op, p)] for p in PHASES} for op in OPS}
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:6])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "crash_stress.json"))
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from _common import machine  # commit, machine and load, recorded like every benchmark's results

    facts = machine()  # before the run: the load average is the other jobs', not ours
    results = {"benchmark": "crash_stress", "command": " ".join(["scripts/stress_crash.py", *sys.argv[1:]]),
               "machine": facts, **run(args.trials, args.seed)}
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    sys.exit(1 if results["problems"] else 0)


if __name__ == "__main__":
    main()
