"""The paper-style quality evaluation (`recurrentgpt eval`) on the bundled model, small settings.

Runs the real command in a child process (the code measured: RECURRENTGPT_SRC, as every benchmark), then
adds to its JSON what every result file records: the machine, the load average and the commit.

    nice -n 10 .venv/bin/python bench/quality_eval.py             # horror, 2 stories, 150 words past the opening
    nice -n 10 .venv/bin/python bench/quality_eval.py --quick     # the same, 100 words
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import SRC, wait_for_quiet, write_results


def command(words: int, out: Path) -> list[str]:
    """The eval command line of the pipeline check."""
    return [sys.executable, "-c",
            f"import sys; sys.path.insert(0, {str(SRC)!r}); from recurrentgpt.cli import run; run()",
            "--seed", "7", "eval", "--genres", "horror", "--stories", "2", "--words", str(words),
            "--against", "rolling,no-long-term",
            "--paragraph-sentences", "5", "--memory-sentences", "6", "--memory-words", "100",
            "--plan-sentences", "2", "--opening-paragraphs", "2", "--out", str(out),
            "--report", str(Path(__file__).resolve().parent / "results" / "eval-report.md")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 words past the opening instead of 150")
    parser.add_argument("--words", type=int, default=None)
    args = parser.parse_args()
    words = args.words or (100 if args.quick else 150)
    load_before = wait_for_quiet()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "eval.json"
        cmd = command(words, out)
        code = subprocess.call(cmd)
        if code != 0 or not out.exists():
            print(f"recurrentgpt eval failed (exit {code})", file=sys.stderr)
            sys.exit(code or 1)
        report = json.loads(out.read_text())
    write_results("eval", {"quick": args.quick, "load_average_before": load_before,
                           "command": " ".join(["recurrentgpt", *cmd[3:]]), **report})


if __name__ == "__main__":
    main()
