"""Choosing the embedder: `--embedder mpnet` builds all-mpnet-base-v2 from its five PyPI part wheels (joined and
unpacked once into the cache, lazily), and an unknown spec is one clear error. The part wheels are faked here with a
small zip cut in five (the real ones are 404 MB and not installed by the test extras)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from recurrentgpt.cli import main
from recurrentgpt.embeddings import embedder_name, get_embedder
from recurrentgpt.embeddings import packaged
from recurrentgpt.errors import ConfigError

FILES = {"modules.json": b'[{"idx": 0}]', "model.safetensors": bytes(range(256)) * 40, "1_Pooling/config.json": b"{}"}


def fake_parts(folder: Path, files: dict[str, bytes] = FILES) -> list[Path]:
    """One zip of an `all-mpnet-base-v2/` folder, cut into five pieces like the real wheels."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"{packaged.MPNET}/{name}", data)
    blob = buffer.getvalue()
    cut = -(-len(blob) // packaged.MPNET_PARTS)
    parts = []
    for i in range(packaged.MPNET_PARTS):
        part = folder / f"{packaged.MPNET}.zip.{i + 1:03d}"
        part.write_bytes(blob[i * cut : (i + 1) * cut])
        parts.append(part)
    return parts


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RECURRENTGPT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def install(monkeypatch, parts: list[Path]) -> None:
    """Make the parts look installed: find_in_distribution finds part N in wheel N."""
    def find(dist_name, matches, hint):
        number = int(dist_name.rsplit("-", 1)[1])
        assert matches(parts[number - 1].name)
        return parts[number - 1]

    monkeypatch.setattr(packaged, "find_in_distribution", find)


def test_mpnet_is_joined_from_its_parts_once_into_the_cache(tmp_path, cache, monkeypatch):
    """(Seen failing with the parts joined in reverse order: the zip no longer opens.)"""
    parts = fake_parts(tmp_path)
    install(monkeypatch, parts)
    folder = packaged.mpnet_model_path()
    assert folder == cache / packaged.MPNET
    assert {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} == set(FILES)
    assert all((folder / name).read_bytes() == data for name, data in FILES.items())
    for part in parts:  # later uses read the unpacked folder, not the wheels
        part.unlink()
    assert packaged.mpnet_model_path() == folder
    assert [p.name for p in cache.iterdir()] == [packaged.MPNET]  # no temporary folder left behind


def test_parts_that_do_not_join_are_a_config_error_and_leave_nothing(tmp_path, cache, monkeypatch):
    parts = fake_parts(tmp_path)
    parts[2].write_bytes(b"\x00" * parts[2].stat().st_size)  # a damaged middle part
    install(monkeypatch, parts)
    with pytest.raises(ConfigError, match="reinstall"):
        packaged.mpnet_model_path()
    assert list(cache.iterdir()) == []


def test_choosing_mpnet_names_its_vectors_and_loads_nothing_yet(cache):
    """(Seen failing with the embedder joining the parts when it is built rather than when it first embeds.)"""
    embedder = get_embedder("mpnet")
    assert embedder.name == embedder_name("mpnet") == "st:all-mpnet-base-v2"
    # the same name as the folder measured with st:PATH, so vectors embedded either way are shared, never mixed
    assert embedder.name == get_embedder("st:/anywhere/all-mpnet-base-v2").name
    assert embedder.name != get_embedder("minilm").name
    assert not cache.exists()  # nothing is joined or unpacked until the first embedding


def test_an_unknown_embedder_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="unknown embedder 'bge-small'.*minilm, mpnet"):
        get_embedder("bge-small")


def test_mpnet_without_its_wheels_is_one_line_naming_the_install(tmp_path, cache, monkeypatch, capsys):
    """The CLI, importing a manuscript with --embedder mpnet when the part wheels are missing. (Seen failing with
    the lazy load raising a KeyError instead of a ConfigError: a traceback and exit 1.)"""
    def missing(dist_name, matches, hint):
        raise ConfigError(f"{dist_name} is not installed: {hint}")

    monkeypatch.setattr(packaged, "find_in_distribution", missing)
    book = tmp_path / "book.md"
    book.write_text("It was a cold night.\n\nThe ferry was late.\n")
    code = main(["--model", "scripted", "--embedder", "mpnet", "import", str(book), "--genre", "noir"])
    _, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error")] == [
        f"error: {packaged.MPNET}-pypi-part-001 is not installed: {packaged.MPNET_INSTALL}"]
    assert main(["--model", "scripted", "--embedder", "hash", "list"]) == 0
    assert "noir" not in capsys.readouterr().out  # nothing half-written: no story without its vectors


def test_a_library_opened_with_another_embedder_re_embeds_and_the_first_one_still_works(tmp_path):
    """Vectors are filed under the embedder's name: a library written with one embedder and opened with another
    (e.g. minilm, then mpnet) embeds its paragraphs again once, and opening it with the first embedder again
    reuses the old vectors. (Seen failing with vector_key returning one fixed name: nothing was re-embedded.)"""
    from recurrentgpt import HashingEmbedder, Loom, ScriptedModel

    from .conftest import SMALL

    db = tmp_path / "switch.db"
    first = Loom.open(db, ScriptedModel(), HashingEmbedder(256))
    info = first.new_story("fantasy", "x", settings=SMALL)
    first.close()

    other = Loom.open(db, ScriptedModel(), HashingEmbedder(128))
    path = other.store.path_seqs(other.node(info.id).id)
    assert other.embed_story(info.id) == len(path)  # every paragraph, once, under the new name
    assert other.recall(info.id, "the dragon", k=1) and other.memory.embedded_paragraphs == len(path)
    # paragraph chunks only (a synopsis is filed at a negative chunk number beside them)
    rows = dict(other.store._query("SELECT embedder, count(*) FROM vectors WHERE chunk >= 0 GROUP BY embedder"))
    assert rows == {"hash-256": len(path), "hash-128": len(path)}
    other.close()

    again = Loom.open(db, ScriptedModel(), HashingEmbedder(256))
    assert again.embed_story(info.id) == 0
    assert again.recall(info.id, "the dragon", k=1) and again.memory.embedded_paragraphs == 0
    again.close()
