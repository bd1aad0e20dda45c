"""The paper-style quality evaluation (`recurrentgpt eval`) on the bundled model, small settings.

Runs the real command in a child process (the code measured: RECURRENTGPT_SRC, as every benchmark), then
adds to its JSON what every result file records: the machine, the load average and the commit.

    nice -n 10 .venv/bin/python bench/quality_eval.py             # horror, 2 stories, 150 words past the opening
    nice -n 10 .venv/bin/python bench/quality_eval.py --quick     # the same, 100 words
    nice -n 10 .venv/bin/python bench/quality_eval.py --kill-after 4   # a run killed and resumed (below)
    nice -n 10 .venv/bin/python bench/quality_eval.py --kill-after 4 --servers  # the same through two servers

``--kill-after N`` checks that a real run survives: one story against ``rolling``, the child killed with
SIGKILL once its journal holds N answered calls, then ``eval --resume``. It records how many answers the
resume took from the journal, how many it asked the model, whether every pair was judged exactly once, and
whether the replayed answers were exactly the journal's (nothing asked twice). Result: eval_resume.json.
With ``--servers`` the writer and the judge are the bundled model behind two llama-cpp-python servers
(OpenAI-compatible, started here), as on someone's own machines: eval_resume_servers.json.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from _common import SRC, wait_for_quiet, write_results

RUN = f"import sys; sys.path.insert(0, {str(SRC)!r}); from recurrentgpt.cli import run; run()"


def command(words: int, out: Path, *, stories: int = 2, against: str = "rolling,no-long-term",
            report: Path | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    """The eval command line of the pipeline check."""
    cmd = [sys.executable, "-c", RUN, "--seed", "7", "eval", "--genres", "horror", "--stories", str(stories),
           "--words", str(words), "--against", against,
           "--paragraph-sentences", "5", "--memory-sentences", "6", "--memory-words", "100",
           "--plan-sentences", "2", "--opening-paragraphs", "2", "--out", str(out), *extra]
    return cmd + (["--report", str(report)] if report else [])


@contextmanager
def llama_server() -> Iterator[str]:
    """The bundled model behind llama-cpp-python's OpenAI-compatible server; its /v1 address."""
    import httpx

    from recurrentgpt.models.llamacpp import bundled_model_path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path()),
                               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "1",
                               "--verbose", "False"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.time() > deadline:
                sys.exit("llama_cpp.server did not start (pip install 'llama-cpp-python[server]')")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def journal_calls(journal: Path) -> list[dict]:
    """The answered calls a journal holds (a last line cut short by a kill is skipped)."""
    if not journal.exists():
        return []
    calls = []
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("kind") == "call":
            calls.append(record)
    return calls


def resume_check(words: int, kill_after: int, folder: Path, servers: tuple[str, str] | None = None) -> dict:
    """Kill a real run with SIGKILL after ``kill_after`` journaled answers, resume it, count what was asked."""
    out = folder / "eval.json"
    journal = out.with_name("eval.journal.jsonl")
    extra: tuple[str, ...] = ("--no-plan-check",)
    if servers:
        extra += ("--judge", "openai:smollm2-judge", "--judge-base-url", servers[1], "--judge-api-key", "unused",
                  "--judge-timeout", "300")
    cmd = command(words, out, stories=1, against="rolling", extra=extra)
    if servers:
        i = cmd.index("eval")
        cmd[i:i] = ["--model", "openai:smollm2", "--base-url", servers[0], "--api-key", "unused", "--timeout", "300",
                    "--embedder", "hash"]
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    while child.poll() is None and len(journal_calls(journal)) < kill_after:
        time.sleep(0.2)
    if child.poll() is None:
        child.send_signal(signal.SIGKILL)
    code = child.wait()
    first_seconds = time.perf_counter() - started
    before = journal_calls(journal)
    if code != -signal.SIGKILL:
        sys.exit(f"the run ended (exit {code}) before its journal held {kill_after} answers: nothing was killed")
    started = time.perf_counter()
    keys = (["--api-key", "unused", "--timeout", "300", "eval", "--judge-api-key", "unused", "--judge-timeout", "300"]
            if servers else ["eval"])  # keys and timeouts are not in the journal
    resumed = subprocess.run([sys.executable, "-c", RUN, *keys, "--resume", str(out)], capture_output=True, text=True)
    resume_seconds = time.perf_counter() - started
    if resumed.returncode not in (0, 3) or not out.exists():
        sys.exit(f"the resume failed (exit {resumed.returncode}): {resumed.stderr.strip()[-500:]}")
    report = json.loads(out.read_text())
    after = journal_calls(journal)
    calls = report["calls"]
    replayed = sum(c["replayed"] for c in calls.values())
    sent = sum(c["sent"] for c in calls.values())
    keys = [(j["genre"], j["pair"], j["a"], j["b"], j["first"]) for j in report["judgements"]]
    overall = report["table"]["recurrentgpt vs rolling"]["overall"]
    return {
        "command": " ".join(["recurrentgpt", *cmd[3:]]),
        "kill_after": kill_after,
        "killed_exit": code,
        "first_run_seconds": round(first_seconds, 1),
        "resume_exit": resumed.returncode,
        "resume_seconds": round(resume_seconds, 1),
        "answers_in_journal_at_kill": len(before),
        "replayed_on_resume": replayed,
        "sent_on_resume": sent,
        "failed_on_resume": sum(c["failed"] for c in calls.values()),
        # every answer the journal held at the kill was used by the resume, and every call the resume sent
        # is one new journal record: nothing answered twice
        "nothing_asked_twice": replayed == len(before) and len(after) == len(before) + sent,
        "judgements": len(keys),
        "judged_exactly_once": len(keys) == len(set(keys)) == 2,
        "incomplete": report["incomplete"],
        "failed": report["failed"],
        "calls": calls,
        "win_rate": {c: overall[c]["win_rate"] for c in ("interesting", "coherent")},
        "first_position": {c: overall[c]["first_position"] for c in ("interesting", "coherent")},
        "words": {k: w["words"] for s in report["stories"] for k, w in s["written"].items()},
        "servers": report.get("servers"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 words past the opening instead of 150")
    parser.add_argument("--words", type=int, default=None)
    parser.add_argument("--kill-after", type=int, default=None,
                        help="kill a one-story run after this many journaled answers, then resume it")
    parser.add_argument("--servers", action="store_true",
                        help="with --kill-after: the writer and the judge behind two llama-cpp-python servers")
    args = parser.parse_args()
    words = args.words or (100 if args.quick or args.kill_after else 150)
    load_before = wait_for_quiet()
    with tempfile.TemporaryDirectory() as tmp:
        if args.kill_after:
            with ExitStack() as stack:
                servers = (stack.enter_context(llama_server()), stack.enter_context(llama_server())) \
                    if args.servers else None
                result = resume_check(words, args.kill_after, Path(tmp), servers)
            print(json.dumps(result, indent=2))
            write_results("eval_resume_servers" if args.servers else "eval_resume",
                          {"load_average_before": load_before, **result})
            if not (result["nothing_asked_twice"] and result["judged_exactly_once"]):
                sys.exit(1)
            return
        out = Path(tmp) / "eval.json"
        cmd = command(words, out, report=Path(__file__).resolve().parent / "results" / "eval-report.md")
        code = subprocess.call(cmd)
        if code != 0 or not out.exists():
            print(f"recurrentgpt eval failed (exit {code})", file=sys.stderr)
            sys.exit(code or 1)
        report = json.loads(out.read_text())
    write_results("eval", {"quick": args.quick, "load_average_before": load_before,
                           "command": " ".join(["recurrentgpt", *cmd[3:]]), **report})


if __name__ == "__main__":
    main()
