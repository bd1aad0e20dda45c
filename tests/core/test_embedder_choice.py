"""Choosing the embedder: `--embedder mpnet` and `--embedder embeddinggemma` load the models by their official
names (sentence-transformers/all-mpnet-base-v2, google/embeddinggemma-300m) from a folder in the cache or the
user's Hugging Face cache, never downloading; models that name query/document prompts get them; an unknown spec is
one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from recurrentgpt.cli import main
from recurrentgpt.embeddings import embedder_name, get_embedder
from recurrentgpt.embeddings import sentence_transformers as st
from recurrentgpt.errors import ConfigError


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RECURRENTGPT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty Hugging Face cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "cache"


@pytest.mark.parametrize("spec, name", [("mpnet", "st:all-mpnet-base-v2"),
                                        ("embeddinggemma", "st:embeddinggemma-300m")])
def test_choosing_an_official_model_names_its_vectors_and_loads_nothing_yet(cache, spec, name):
    """The vectors keep the names they were measured under, so a library embedded before keeps its vectors."""
    embedder = get_embedder(spec)
    assert embedder.name == embedder_name(spec) == name
    assert embedder.name == get_embedder(f"st:/anywhere/{name[3:]}").name
    assert embedder.name != get_embedder("minilm").name
    assert not cache.exists()


@pytest.mark.parametrize("spec, repo", [("mpnet", "sentence-transformers/all-mpnet-base-v2"),
                                        ("embeddinggemma", "google/embeddinggemma-300m")])
def test_an_official_model_is_looked_up_in_the_hugging_face_cache_only(cache, monkeypatch, tmp_path, spec, repo):
    """The official name, from the cache only (local_files_only): never a download. (Seen failing with the lookup
    allowed to download: local_files_only was not passed.)"""
    import huggingface_hub

    asked = []
    folder = tmp_path / "snapshot"

    def snapshot_download(repo_id, **kw):
        asked.append((repo_id, kw.get("local_files_only")))
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    name, official = st.OFFICIAL[spec]
    assert official == repo
    assert st.official_model_path(name, official) == folder
    assert asked == [(repo, True)]


def test_a_folder_in_the_cache_comes_first(cache):
    """A copy unpacked into <cache>/NAME (by hand, or by bench/model_copies.py) is used as it is."""
    folder = cache / "embeddinggemma-300m"
    folder.mkdir(parents=True)
    (folder / "modules.json").write_text("[]")
    assert st.official_model_path(*st.OFFICIAL["embeddinggemma"]) == folder


@pytest.mark.slow
def test_an_official_model_not_in_the_cache_is_one_line_naming_the_download(tmp_path, cache, capsys):
    """Through the CLI, importing a manuscript: one error line naming `hf download` with the official name, exit 2,
    no traceback, nothing written."""
    book = tmp_path / "book.md"
    book.write_text("It was a cold night.\n\nThe ferry was late.\n")
    db = tmp_path / "lib.db"
    code = main(["--db", str(db), "--model", "scripted", "--embedder", "embeddinggemma", "import", str(book),
                 "--genre", "noir"])
    _, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert code == 2 and "Traceback" not in err and len(errors) == 1, err
    assert "hf download google/embeddinggemma-300m" in errors[0] and "huggingface.co" in errors[0]
    assert main(["--db", str(db), "--model", "scripted", "--embedder", "hash", "list"]) == 0
    assert "noir" not in capsys.readouterr().out


# words that would tell a user to get a model from a third party's upload under another name
THIRD_PARTY_COPIES = ("pypi-part", "simple" + "-pypi", "part wheel", "pypi wheel", "downloaded pypi")


def test_no_product_code_or_doc_assembles_or_recommends_third_party_wheels():
    """The part wheels' assembly lives in bench/ only, and nothing a user reads (the code, its help texts, the
    README, the docs) points them at those uploads. Seen failing on the --embedder help that still did."""
    root = Path(__file__).resolve().parents[2]
    package = root / "src" / "recurrentgpt"
    assert not (package / "embeddings" / "packaged.py").exists()
    read = [p for p in package.rglob("*") if p.is_file() and p.suffix in (".py", ".j2", ".html", ".js", ".json")]
    read += [root / "README.md", *(root / "docs").glob("*.md")]
    found = [f"{p.relative_to(root)}: {word}" for p in read for word in THIRD_PARTY_COPIES
             if word in p.read_text(encoding="utf-8").lower()]
    assert found == []


def test_an_unknown_embedder_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="unknown embedder 'bge-small'.*minilm, mpnet, embeddinggemma.*ollama:NAME"):
        get_embedder("bge-small")


class FakeSentenceTransformer:
    """Records the prompt each encode asked for."""

    def __init__(self, prompts: dict[str, str]):
        self.prompts = prompts
        self.asked: list[str | None] = []

    def encode(self, texts, prompt_name=None, **kwargs):
        self.asked.append(prompt_name)
        return [[1.0, 0.0] for _ in texts]


@pytest.mark.parametrize("prompts, passage, query", [
    ({"query": "task: search result | query: ", "document": "title: none | text: ",
      "STS": "task: sentence similarity | query: "},
     "document", "query"),  # EmbeddingGemma's folder
    ({"query": "query: ", "passage": "passage: "}, "passage", "query"),  # e5's names
    ({}, None, None),  # MiniLM, mpnet: the bare text
    ({"query": "", "document": ""}, None, None),  # named but empty: nothing to add
])
def test_passages_and_queries_get_the_prompts_their_model_folder_names(prompts, passage, query):
    """Retrieval models trained with prefixes lose much of their recall without them. (Seen failing with
    embed_query going through embed: the query got the document prompt.)"""
    from recurrentgpt.embeddings.sentence_transformers import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder("/anywhere/model", query_threads=None)
    embedder._model = FakeSentenceTransformer(prompts)
    embedder.embed(["A paragraph.", "Another."])
    embedder.embed_query("A plan.")
    assert embedder._model.asked == [passage, query]


def test_a_library_opened_with_another_embedder_re_embeds_and_the_first_one_still_works(tmp_path):
    """Vectors are filed under the embedder's name: a library written with one embedder and opened with another
    (e.g. minilm, then mpnet) embeds its paragraphs again once, and opening it with the first embedder again
    reuses the old vectors. (Seen failing with vector_key returning one fixed name: nothing was re-embedded.)"""
    from recurrentgpt import HashingEmbedder, Loom, ScriptedModel
    from tests.conftest import SMALL

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
