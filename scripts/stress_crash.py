"""Crash safety: SIGKILL a process at random moments while it writes, then prove nothing was lost or torn.

A worker process loops one operation (step, regenerate, import a manuscript, export a tree, a step with the
story bible in auto mode and a writer's bible edit) against a
library as fast as it can; it is killed with SIGKILL after a random delay. After each kill the checker
proves: PRAGMA integrity_check is ok; every node has its full-text row and its vectors (no half step);
every parent and head exists; an export file is either absent or complete; every story opens and
continues with a new step.

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
from pathlib import Path

OPS = ("step", "regenerate", "import", "export", "bible")
MANUSCRIPT = "\n\n".join(f"Paragraph {i} of an imported book, about the harbour at dawn." for i in range(60))


def worker(db: str, op: str, workdir: str) -> None:
    from recurrentgpt import Loom, ScriptedModel

    loom = Loom.open(db, ScriptedModel(), "hash")
    story_id = loom.stories()[-1].id
    i = 0
    while True:
        i += 1
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
            from recurrentgpt.cli.write import write_atomically

            write_atomically(Path(workdir) / "tree.json", loom.export(story_id, "tree"))


def check(db: str, workdir: str) -> list[str]:
    """Everything that must hold after a crash; returns the problems found (none, we hope)."""
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
    if q("SELECT count(*) FROM stories s WHERE s.head_id IS NULL OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = s.head_id)"):
        problems.append("a story whose head is missing")
    if q("SELECT count(*) FROM nodes c WHERE c.parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM nodes p WHERE p.id = c.parent_id)"):
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
    # the first story (written by every step/regenerate/export worker) and the newest ones (imports)
    for story in stories[:1] + stories[-3:]:
        try:
            loom.bible(story.id)  # the canon materialises from whatever changes the nodes hold
            before = len(loom.path(story.id))
            loom.step(story.id, "After the crash, the story goes on.")
            if len(loom.path(story.id)) != before + 1:
                problems.append(f"story {story.id} did not continue")
        except Exception as e:  # any failure here is a finding, not a crash of the checker
            problems.append(f"story {story.id} cannot continue: {type(e).__name__}: {e}")
    loom.close()
    return problems


def run(trials: int, seed: int = 0, max_delay: float = 1.5) -> dict:
    from recurrentgpt import Loom, ScriptedModel, Settings

    rng = random.Random(seed)
    results = {"trials": 0, "kills": 0, "by_operation": {op: 0 for op in OPS}, "problems": [], "seconds": 0.0}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        db = str(Path(workdir) / "library.db")
        Loom.open(db, ScriptedModel(), "hash").new_story("fantasy", "crash test", settings=Settings(opening_paragraphs=2))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        for trial in range(trials):
            op = OPS[trial % len(OPS)]
            proc = subprocess.Popen([sys.executable, __file__, "--worker", db, op, workdir], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.3, max_delay))  # start-up takes ~0.3 s; then it is mid-work
            exited = proc.poll() is not None
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if exited:
                results["problems"].append(f"trial {trial}: worker died on its own: {proc.stderr.read()[-500:]!r}")
            results["kills"] += 0 if exited else 1
            results["trials"] += 1
            results["by_operation"][op] += 1
            for problem in check(db, workdir):
                results["problems"].append(f"trial {trial} ({op}): {problem}")
        con = sqlite3.connect(db)
        results["nodes_at_end"] = con.execute("SELECT count(*) FROM nodes").fetchone()[0]
        results["stories_at_end"] = con.execute("SELECT count(*) FROM stories").fetchone()[0]
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "bench" / "results" / "crash_stress.json"))
    args = ap.parse_args()
    results = run(args.trials, args.seed)
    print(json.dumps(results, indent=2))
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    sys.exit(1 if results["problems"] else 0)


if __name__ == "__main__":
    main()
