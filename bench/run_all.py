"""Run every benchmark, one after another (never two heavy jobs at once), and the small eval.

    nice -n 10 .venv/bin/python bench/run_all.py              # full (~25 min on 2 cores)
    nice -n 10 .venv/bin/python bench/run_all.py --quick      # ~8 min
    nice -n 10 .venv/bin/python bench/run_all.py --snapshot   # measure a clean export of HEAD, not the work tree

Each benchmark writes bench/results/<name>.json and its plot under docs/bench/.
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
BENCHMARKS = ["memory_cost", "retrieval", "needle", "prompt_size", "model_time"]


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
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS + ["eval"], help="run only these")
    parser.add_argument("--skip-eval", action="store_true")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.snapshot:
        env["RECURRENTGPT_SRC"] = str(snapshot())
        print(f"measuring {env['RECURRENTGPT_SRC']}")
    chosen = args.only or BENCHMARKS + ([] if args.skip_eval else ["eval"])
    started = time.perf_counter()
    for name in chosen:
        t = time.perf_counter()
        print(f"\n===== {name} =====", flush=True)
        if name == "eval":
            src = env.get("RECURRENTGPT_SRC", str(ROOT / "src"))
            cmd = [sys.executable, "-c", f"import sys; sys.path.insert(0, {src!r}); from recurrentgpt.cli import run; run()",
                   "--seed", "7", "eval", "--genres", "horror", "--stories", "2", "--words", "100" if args.quick else "150",
                   "--against", "rolling,no-long-term",
                   "--paragraph-sentences", "5", "--memory-sentences", "6", "--memory-words", "100",
                   "--plan-sentences", "2", "--opening-paragraphs", "2",
                   "--out", str(HERE / "results" / "eval.json"), "--report", str(HERE / "results" / "eval-report.md")]
        else:
            cmd = [sys.executable, str(HERE / f"{name}.py")] + (["--quick"] if args.quick else [])
        code = subprocess.call(cmd, env=env, cwd=ROOT)
        print(f"===== {name}: exit {code}, {time.perf_counter() - t:.0f} s", flush=True)
    print(f"\nall done in {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
