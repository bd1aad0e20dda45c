"""Where the story library is and how a Loom is opened on it: the one factory the CLI and the web share.

    options = LibraryOptions.from_environment()     # $RECURRENTGPT_DB, $RECURRENTGPT_MODEL, …
    loom = options.open_loom()

Each option has one environment variable (``ENVIRONMENT``): the CLI's global options fall back to them,
and the web's worker processes (``serve --workers N``) are built from them (then the config file).
Nothing heavy is imported here: the CLI imports this module to start.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from .errors import ConfigError

if TYPE_CHECKING:
    from .loom import Loom

RESPONSE_FORMATS = ("auto", "json_schema", "json_object", "text")  # how to ask a server for structured answers
RETRIEVAL_MODES = ("hybrid", "weighted", "dense", "bm25")  # how the long-term memory is searched

# option -> environment variable
ENVIRONMENT = {
    "db": "RECURRENTGPT_DB",
    "model": "RECURRENTGPT_MODEL",
    "embedder": "RECURRENTGPT_EMBEDDER",
    # the server named by --model, whichever it is (a preset's own address, $OPENAI_BASE_URL and a provider's
    # key are read where the model is built: models/__init__.py, keys.py)
    "base_url": "RECURRENTGPT_BASE_URL",
    "api_key": "RECURRENTGPT_API_KEY",
    "response_format": "RECURRENTGPT_RESPONSE_FORMAT",
    "timeout": "RECURRENTGPT_TIMEOUT",
    "retrieval": "RECURRENTGPT_RETRIEVAL",
    "chunk_words": "RECURRENTGPT_CHUNK_WORDS",
    "seed": "RECURRENTGPT_SEED",
    "threads": "RECURRENTGPT_THREADS",
    "num_ctx": "RECURRENTGPT_NUM_CTX",
    "embedder_url": "RECURRENTGPT_EMBEDDER_URL",
}


def default_db() -> str:
    """The library when none is named: $RECURRENTGPT_DB, else the user's data folder."""
    if os.environ.get(ENVIRONMENT["db"]):
        return os.environ[ENVIRONMENT["db"]]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "recurrentgpt", "library.db")


@dataclass(frozen=True)
class LibraryOptions:
    """Which library (an SQLite path or a PostgreSQL URL), model and embedder a Loom is opened with."""

    db: str = field(default_factory=default_db)
    model: str = "smollm2"
    embedder: str = "minilm"
    base_url: str | None = None
    api_key: str | None = None
    response_format: str | None = None  # None: auto, or what a server preset supports
    timeout: float = 120.0
    retrieval: str = "weighted"
    chunk_words: int | None = None
    seed: int | None = None
    threads: int | None = None  # the embedded model's CPU threads
    num_ctx: int | None = None  # the context to ask for where it is ours to set: Ollama's num_ctx, the embedded n_ctx
    embedder_url: str | None = None  # an embedding server's address when it is not its preset's

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ,
                         file: Mapping[str, Any] | None = None) -> "LibraryOptions":
        """Options from ``ENVIRONMENT``; an unset or empty variable takes the config file's value (``file``:
        its checked global options; never an API key, which comes from the environment only), then the
        default."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENVIRONMENT[f.name], "").strip()
            if not raw:
                if file and f.name != "api_key" and file.get(f.name) not in (None, ""):
                    values[f.name] = file[f.name]
                continue
            kind = {"timeout": float, "chunk_words": int, "seed": int, "threads": int, "num_ctx": int}.get(f.name, str)
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise ConfigError(f"${ENVIRONMENT[f.name]} must be a {kind.__name__}, not {raw!r}") from None
        options = cls(**values)
        for name, choices in (("response_format", RESPONSE_FORMATS), ("retrieval", RETRIEVAL_MODES)):
            if getattr(options, name) is not None and getattr(options, name) not in choices:
                raise ConfigError(f"${ENVIRONMENT[name]} must be one of {', '.join(choices)}, "
                                  f"not {getattr(options, name)!r}")
        return options

    def environment(self) -> dict[str, str | None]:
        """The variables ``from_environment`` reads back as these options (None: leave it unset)."""
        return {ENVIRONMENT[name]: None if value is None else str(value)
                for name, value in dataclasses.asdict(self).items()}

    def model_options(self) -> dict[str, Any]:
        """What ``get_model`` takes besides the model's name."""
        return {"base_url": self.base_url, "api_key": self.api_key, "response_format": self.response_format,
                "timeout": self.timeout, "seed": self.seed, "n_threads": self.threads, "num_ctx": self.num_ctx,
                "embedder_url": self.embedder_url}

    @property
    def in_memory(self) -> bool:
        return self.db.strip() in (":memory:", "sqlite:///:memory:")

    def open_loom(self, **overrides: Any) -> "Loom":
        """A Loom on the library; the model and embedder load on first use. ``overrides`` replace
        the model or embedder (a name or a built one) or the library (``db``)."""
        from .loom import Loom

        return Loom.open(
            overrides.pop("db", self.db),
            overrides.pop("model", self.model),
            overrides.pop("embedder", self.embedder),
            model_options=self.model_options(),
            retrieval=self.retrieval,  # type: ignore[arg-type]  (one of RETRIEVAL_MODES)
            chunk_words=self.chunk_words,
            seed=self.seed,
            **overrides,
        )


class Library:
    """The library the options name, as the CLI's commands share it: its loom is opened on first use
    (so ``--help`` and option errors never open a database or load a model)."""

    def __init__(self, options: LibraryOptions):
        self.options = options
        self._loom: Loom | None = None

    @property
    def loom(self) -> "Loom":
        if self._loom is None:
            self._loom = self.options.open_loom()
        return self._loom
