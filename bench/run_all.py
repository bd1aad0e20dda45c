"""Run the main benchmarks, one after another (never two heavy jobs at once).

    nice -n 10 .venv/bin/python bench/run_all.py              # full (~25 min on 2 cores, quiet)
    nice -n 10 .venv/bin/python bench/run_all.py --quick      # each benchmark's --quick
    nice -n 10 .venv/bin/python bench/run_all.py --snapshot   # measure a clean export of HEAD, not the work tree

Each benchmark writes bench/results/<name>.json (some also a plot under docs/bench/).
scale_batch measures PostgreSQL too when $RECURRENTGPT_TEST_PG is set; load_web runs on SQLite.
Exits non-zero if any benchmark did.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# quality_eval.py runs the `recurrentgpt eval` command; the real-prose set needs Debian's r-cran-janeaustenr
# and runs on its own (bench/retrieval_prose.py)
BENCHMARKS = ["memory_cost", "retrieval", "needle", "prompt_size", "model_time", "quality_eval", "loom_tree",
              "scale_batch", "load_web", "bible", "threads", "step_speed"]


def snapshot() -> Path:
    """Export HEAD's src/ to a temporary folder, so edits in the work tree do not leak into the numbers."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    target = Path("/tmp") / f"recurrentgpt-src-{commit}"
    if not (target / "COMMIT").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD", "src"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(target), "--strip-components=1"], input=archive.stdout, check=True)
        (target / "COMMIT").write_text(commit + "\n")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--snapshot", action="store_true", help="measure a clean export of HEAD")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--skip", nargs="*", choices=BENCHMARKS, default=[], help="run all but these")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.snapshot:
        env["RECURRENTGPT_SRC"] = str(snapshot())
        print(f"measuring {env['RECURRENTGPT_SRC']}")
    chosen = [name for name in (args.only or BENCHMARKS) if name not in args.skip]
    started = time.perf_counter()
    failed = []
    for name in chosen:
        t = time.perf_counter()
        print(f"\n===== {name} =====", flush=True)
        cmd = [sys.executable, str(HERE / f"{name}.py")] + (["--quick"] if args.quick else [])
        code = subprocess.call(cmd, env=env, cwd=ROOT)
        print(f"===== {name}: exit {code}, {time.perf_counter() - t:.0f} s", flush=True)
        if code:
            failed.append(name)
    print(f"\nall done in {(time.perf_counter() - started) / 60:.1f} min"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
