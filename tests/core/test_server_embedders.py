"""Embedders through the writer's own servers (`--embedder ollama:nomic-embed-text`, `lmstudio:NAME`,
`llamacpp-server`), against fakes of their documented endpoints: the model family's prefixes are sent, vectors are
filed under the embedder's name (so changing it never mixes vectors), a server without the model or without
embeddings is one line naming the fix, and doctor checks it."""

from __future__ import annotations

import numpy as np
import pytest

from recurrentgpt.cli import main
from recurrentgpt.embeddings import embedder_name, get_embedder
from recurrentgpt.errors import ConfigError
from tests.fakeserver import FakeServer, reply


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


def _vectors(texts: list[str], dim: int = 8) -> list[list[float]]:
    """A vector per text that depends on its words (so recall has something to find)."""
    out = []
    for text in texts:
        v = np.zeros(dim)
        for word in text.lower().split():
            v[hash(word) % dim] += 1.0
        out.append([float(x) for x in v])
    return out


def ollama_embed(server):
    def behave(h, body):
        reply({"model": body["model"], "embeddings": _vectors(body["input"])})(h, body)
    server.routes["POST /api/embed"] = behave


def openai_embed(server):
    def behave(h, body):
        reply({"object": "list", "data": [{"object": "embedding", "index": i, "embedding": v}
                                          for i, v in enumerate(_vectors(body["input"]))]})(h, body)
    server.routes["POST /v1/embeddings"] = behave


def test_ollama_embeds_natively_with_the_models_prefixes(server, monkeypatch):
    """nomic-embed-text was trained with `search_document: ` and `search_query: `: they are sent."""
    seen = []

    def behave(h, body):
        seen.append((body["model"], list(body["input"])))
        reply({"embeddings": _vectors(body["input"])})(h, body)

    server.routes["POST /api/embed"] = behave
    monkeypatch.setenv("OLLAMA_HOST", server.root)
    embedder = get_embedder("ollama:nomic-embed-text:latest")
    assert embedder.name == embedder_name("ollama:nomic-embed-text") == "ollama:nomic-embed-text"
    vectors = embedder.embed(["The ferry was late.", "The keeper lied."])
    query = embedder.embed_query("a late ferry")
    assert vectors.shape == (2, 8) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert query.shape == (8,)
    assert seen == [("nomic-embed-text:latest", ["search_document: The ferry was late.",
                                                 "search_document: The keeper lied."]),
                    ("nomic-embed-text:latest", ["search_query: a late ferry"])]


def test_a_model_ollama_has_not_pulled_is_one_line(server, monkeypatch):
    server.routes["POST /api/embed"] = reply({"error": "model \"mxbai-embed-large\" not found, try pulling it first"},
                                             404)
    monkeypatch.setenv("OLLAMA_HOST", server.root)
    with pytest.raises(ConfigError, match="Ollama has no embedding model 'mxbai-embed-large': `ollama pull"):
        get_embedder("ollama:mxbai-embed-large").embed(["x"])


def test_a_llama_server_without_embeddings_names_the_flag(server):
    server.routes["POST /v1/embeddings"] = reply({"error": {"code": 501, "message": "This server does not support "
                                                            "embeddings. Start it with `--embeddings`",
                                                            "type": "not_supported_error"}}, 501)
    with pytest.raises(ConfigError, match="restart it with --embeddings"):
        get_embedder("llamacpp-server:bge", server_url=server.url).embed(["x"])


def test_a_llama_server_named_by_address_only_keys_its_vectors_by_the_model_it_lists(server):
    server.routes["GET /v1/models"] = reply({"data": [{"id": "/models/bge-small-en-v1.5-q8_0.gguf"}]})
    openai_embed(server)
    embedder = get_embedder("llamacpp-server", server_url=server.url)
    assert embedder.name == "llamacpp-server:bge-small-en-v1.5-q8_0.gguf"
    assert embedder.embed(["a"]).shape == (1, 8)


def test_a_server_embedder_gets_no_key(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    openai_embed(server)
    get_embedder("lmstudio:text-embedding-nomic-embed-text-v1.5", api_key="for-the-model",
                 server_url=server.url).embed(["a"])
    assert not any("Authorization" in h for h in server.all_headers)


def test_changing_the_server_embedder_re_embeds_and_never_mixes(server, monkeypatch, tmp_path, capsys):
    """A story imported with ollama:nomic-embed-text, then recalled with ollama:mxbai-embed-large: the second
    embeds every paragraph again under its own name; the first's vectors stay. Through the CLI."""
    ollama_embed(server)
    monkeypatch.setenv("OLLAMA_HOST", server.root)
    book = tmp_path / "book.md"
    book.write_text("It was a cold night.\n\nThe ferry was late.\n\nThe keeper lied about the key.\n")
    db = str(tmp_path / "lib.db")
    assert main(["--db", db, "--model", "scripted", "--embedder", "ollama:nomic-embed-text", "import", str(book),
                 "--genre", "noir", "--title", "Ferry"]) == 0
    sid = capsys.readouterr().out.split("imported story ")[1].split(":")[0]
    from recurrentgpt import Loom, ScriptedModel

    loom = Loom.open(db, ScriptedModel(), "ollama:mxbai-embed-large")
    assert loom.embed_story(sid) == 3
    rows = dict(loom.store._query("SELECT embedder, count(*) FROM vectors WHERE chunk >= 0 GROUP BY embedder"))
    assert rows == {"ollama:nomic-embed-text": 3, "ollama:mxbai-embed-large": 3}
    loom.close()


@pytest.mark.slow
def test_embedder_url_reaches_the_embedding_server_and_doctor_checks_it(server, capsys, tmp_path, monkeypatch):
    """A second llama-server for embeddings, on its own port: --embedder-url. doctor embeds one text there."""
    monkeypatch.setenv("RECURRENTGPT_CONFIG", str(tmp_path / "none.toml"))
    openai_embed(server)
    code = main(["--model", "scripted", "--embedder", "llamacpp-server:bge-small", "--embedder-url", server.url,
                 "doctor"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[-1].startswith("ok    embedder  llamacpp-server:bge-small: 8 dimensions"), out
    server.routes.pop("POST /v1/embeddings")
    code = main(["--model", "scripted", "--embedder", "llamacpp-server:bge-small", "--embedder-url", server.url,
                 "doctor"])
    assert code == 1 and capsys.readouterr().out.splitlines()[-1].startswith("FAIL  embedder")
