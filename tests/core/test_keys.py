"""Keys like simonw/llm's: each hosted provider's key goes to that provider only (an OpenAI key never reaches a
local server or another provider), $OPENAI_BASE_URL moves `openai:` only, `keys set` keeps a key in the OS keyring
(a fake in-memory backend here: this machine has no Secret Service), and `config` says where the address and the
key come from. Checked failing against the code before: every server got $OPENAI_API_KEY as a Bearer token."""

from __future__ import annotations

import dataclasses

import pytest

from recurrentgpt import keys
from recurrentgpt.cli import main
from recurrentgpt.errors import ModelAuthError
from recurrentgpt.models import PRESETS, address, get_model
from recurrentgpt.models.base import Request
from tests.fakeserver import FakeServer, ndjson, reply, status, stream

keyring = pytest.importorskip("keyring")
from keyring.backend import KeyringBackend  # noqa: E402
from keyring.backends import fail  # noqa: E402


class MemoryKeyring(KeyringBackend):
    """A keyring backend in memory (keyring's documented way to plug one in: keyring.set_keyring)."""

    priority = 1

    def __init__(self):
        super().__init__()
        self.kept: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.kept.get((service, username))

    def set_password(self, service, username, password):
        self.kept[(service, username)] = password

    def delete_password(self, service, username):
        del self.kept[(service, username)]


@pytest.fixture
def memory():
    before = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


@pytest.fixture
def every_key(monkeypatch):
    for preset in PRESETS.values():
        if preset.key_env:
            monkeypatch.setenv(preset.key_env, f"key-of-{preset.name}")


def _served_as(monkeypatch, name: str, url: str) -> None:
    """Provider ``name``'s own address is the fake server (so its key may go there)."""
    monkeypatch.setitem(PRESETS, name, dataclasses.replace(PRESETS[name], base_url=url))


@pytest.mark.parametrize("spec", ["llamacpp-server", "koboldcpp", "vllm:m", "lmstudio:m", "openai:m", "openrouter:m",
                                  "groq:m"])
def test_no_provider_key_reaches_a_server_it_was_not_set_for(server, every_key, spec):
    """Every provider's variable set; a server at another address gets none of them, on any request."""
    server.behaviours.append(stream("ok"))
    get_model(spec, base_url=server.url).complete(Request("s", "p"))
    assert server.all_headers and not any("Authorization" in h or "authorization" in h for h in server.all_headers)


def test_no_key_reaches_ollama(server, every_key):
    server.routes["POST /api/show"] = reply({"model_info": {}})
    server.behaviours.append(ndjson("ok"))
    get_model("ollama:m", base_url=server.root).complete(Request("s", "p"))
    assert not any("Authorization" in h for h in server.all_headers)


@pytest.mark.parametrize("name", ["openai", "openrouter", "groq", "deepseek", "mistral", "together"])
def test_each_provider_gets_its_own_key_and_no_other(server, every_key, monkeypatch, name):
    _served_as(monkeypatch, name, server.url)
    server.behaviours.append(stream("ok"))
    get_model(f"{name}:m").complete(Request("s", "p"))
    assert {h.get("Authorization") for h in server.all_headers} == {f"Bearer key-of-{name}"}


def test_an_explicit_key_goes_to_the_server_named(server, every_key, monkeypatch, capsys):
    """--api-key (or $RECURRENTGPT_API_KEY) is typed for the server this command names: it goes there."""
    server.behaviours.append(stream("ok"))
    get_model("vllm:m", base_url=server.url, api_key="typed-for-this").complete(Request("s", "p"))
    assert server.headers[-1]["Authorization"] == "Bearer typed-for-this"
    monkeypatch.setenv("RECURRENTGPT_API_KEY", "from-the-variable")
    server.routes["GET /v1/models"] = reply({"data": [{"id": "m"}]})
    assert main(["--model", "vllm:m", "--base-url", server.url, "models"]) == 0
    assert server.all_headers[-1]["Authorization"] == "Bearer from-the-variable"


def test_openai_base_url_moves_openai_only(server, monkeypatch, every_key):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    assert address("openai:m") == (server.url, "$OPENAI_BASE_URL")
    for name in ("llamacpp-server", "vllm:m", "lmstudio:m", "koboldcpp", "openrouter:m"):
        assert address(name)[0] == PRESETS[name.partition(":")[0]].base_url
    server.behaviours.append(stream("ok"))
    get_model("openai:m").complete(Request("s", "p"))
    assert server.bodies and not any("Authorization" in h for h in server.all_headers)  # not api.openai.com


def test_keys_kept_in_the_keyring_go_to_their_provider(server, memory, monkeypatch, capsys):
    for preset in PRESETS.values():
        if preset.key_env:
            monkeypatch.delenv(preset.key_env, raising=False)
    assert main(["keys", "set", "openrouter", "--value", "or-kept"]) == 0
    assert memory.kept == {("recurrentgpt", "openrouter"): "or-kept"}
    assert "MemoryKeyring" in capsys.readouterr().out
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "openrouter" in listing and "keyring" in listing and "or-kept" not in listing
    _served_as(monkeypatch, "openrouter", server.url)
    server.behaviours += [stream("ok"), stream("ok")]
    get_model("openrouter:m").complete(Request("s", "p"))
    assert server.headers[-1]["Authorization"] == "Bearer or-kept"
    monkeypatch.setenv("OPENROUTER_API_KEY", "or-env")  # the variable beats the keyring
    get_model("openrouter:m").complete(Request("s", "p"))
    assert server.headers[-1]["Authorization"] == "Bearer or-env"
    _served_as(monkeypatch, "groq", server.url)
    assert keys.resolve(PRESETS["groq"], server.url) == ("", "none")  # another provider's kept key is not used
    assert main(["keys", "remove", "openrouter"]) == 0 and memory.kept == {}


def test_without_a_keyring_backend_keys_set_says_so_and_changes_nothing(capsys):
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert main(["keys", "set", "groq", "--value", "x"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no OS keyring is available here" in err and "$GROQ_API_KEY" in err
        assert keys.resolve(PRESETS["groq"], PRESETS["groq"].base_url, environ={}) == ("", "none")  # no crash
    finally:
        keyring.set_keyring(before)


def test_without_the_keyring_library_keys_set_names_the_extra(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "keyring", None)
    assert main(["keys", "set", "groq", "--value", "x"]) == 2
    assert "pip install 'recurrentgpt[keys]'" in capsys.readouterr().err


def test_keys_are_kept_for_providers_only(capsys):
    assert main(["keys", "set", "ollama", "--value", "x"]) == 2
    assert "hosted providers only" in capsys.readouterr().err


def test_config_says_where_the_address_and_the_key_come_from(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("RECURRENTGPT_CONFIG", str(tmp_path / "c.toml"))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://10.0.0.9:8000/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")

    def shown(*args):
        assert main([*args, "config"]) == 0
        out = capsys.readouterr().out
        return [line.split(None, 1)[1] for line in out.splitlines() if line.split()[:1] in (["server"], ["key"])]

    assert shown("--model", "openai:m") == ["http://10.0.0.9:8000/v1   [$OPENAI_BASE_URL]", "(none)   [none]"]
    assert shown("--model", "llamacpp-server") == ["http://127.0.0.1:8080/v1   [the llamacpp-server preset]",
                                                   "(none)   [none]"]
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert shown("--model", "openai:gpt-4o-mini") == ["https://api.openai.com/v1   [the openai preset]",
                                                      "(set)   [$OPENAI_API_KEY]"]
    assert shown("--model", "vllm:m", "--base-url", "http://gpu:8000/v1")[0] == "http://gpu:8000/v1   [--base-url]"


def test_a_refused_key_is_one_line_naming_where_it_came_from(server, monkeypatch, capsys, tmp_path):
    """A key for the wrong provider (here an OpenAI key put in $OPENROUTER_API_KEY): the provider's 401 is one line
    naming the variable the key came from; with no key at all, the variable to set."""
    _served_as(monkeypatch, "openrouter", server.url)
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-openai-key")
    server.behaviours.append(status(401, "No auth credentials found"))
    code = main(["--db", str(tmp_path / "l.db"), "--model", "openrouter:m", "--embedder", "hash", "new", "noir", "x"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 3 and len(errors) == 1 and "the key came from $OPENROUTER_API_KEY" in errors[0], errors
    monkeypatch.delenv("OPENROUTER_API_KEY")
    server.behaviours.append(status(401, "No auth credentials found"))
    with pytest.raises(ModelAuthError, match=r"no key was sent: set \$OPENROUTER_API_KEY or `recurrentgpt keys set"):
        get_model("openrouter:m").complete(Request("s", "p"))


@pytest.mark.parametrize("provider, key, says", [
    ("openai", "sk-or-v1-0123abcd",
     "looks like an OpenRouter key (it starts sk-or-), not OpenAI's: put it in $OPENROUTER_API_KEY"),
    ("openrouter", "sk-proj-0123abcd",
     "looks like an OpenAI key (it starts sk-proj-), not OpenRouter's: put it in $OPENAI_API_KEY"),
    ("deepseek", "gsk_0123abcd", "looks like a Groq key (it starts gsk_), not DeepSeek's: put it in $GROQ_API_KEY"),
    ("groq", "sk-ant-api03-0123", "looks like an Anthropic key (it starts sk-ant-), which no preset takes"),
])
def test_a_key_plainly_for_another_provider_is_one_line_and_never_sent(server, monkeypatch, capsys, tmp_path,
                                                                       provider, key, says):
    """A key whose documented prefix names another provider is refused before any request: it would reach a
    provider it was not set for. Seen failing before the check: the key went out as a Bearer token."""
    _served_as(monkeypatch, provider, server.url)
    variable = PRESETS[provider].key_env
    monkeypatch.setenv(variable, key)
    db = tmp_path / "l.db"
    code = main(["--db", str(db), "--model", f"{provider}:m", "--embedder", "hash", "new", "noir", "x"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert f"the key in ${variable} {says}" in errors[0], errors
    assert server.paths == []  # nothing was sent anywhere
    assert main(["--db", str(db), "--model", "scripted", "--embedder", "hash", "list"]) == 0
    assert "noir" not in capsys.readouterr().out


def test_a_key_typed_for_a_local_server_or_of_no_known_shape_goes_ahead(server, monkeypatch):
    """Only a prefix a provider documents for its own keys counts: a local server's key is the user's to choose,
    and a key without such a prefix (DeepSeek's and OpenAI's older keys share plain sk-) is left to the provider."""
    server.behaviours.append(stream("Yes."))
    get_model("llamacpp-server", base_url=server.url, api_key="sk-or-v1-mine").complete(Request("s", "p"))
    assert server.headers[-1]["Authorization"] == "Bearer sk-or-v1-mine"
    _served_as(monkeypatch, "deepseek", server.url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-0123abcd")
    server.behaviours.append(stream("Yes."))
    get_model("deepseek:m").complete(Request("s", "p"))
    assert server.headers[-1]["Authorization"] == "Bearer sk-0123abcd"


def test_an_openai_embedder_refuses_another_providers_key_too(monkeypatch):
    from recurrentgpt.embeddings import get_embedder
    from recurrentgpt.errors import ConfigError

    monkeypatch.setenv("OPENAI_API_KEY", "sk-or-v1-0123abcd")
    with pytest.raises(ConfigError, match=r"the key in \$OPENAI_API_KEY looks like an OpenRouter key"):
        get_embedder("openai:text-embedding-3-small")


def test_keys_set_refuses_a_key_plainly_for_another_provider(memory, capsys):
    """Kept under the wrong name, the key would be refused at every later call: `keys set` says so at once."""
    assert main(["keys", "set", "openai", "--value", "sk-or-v1-0123abcd"]) == 2
    err = capsys.readouterr().err
    assert "looks like an OpenRouter key (it starts sk-or-), not OpenAI's: `recurrentgpt keys set openrouter`" in err
    assert memory.kept == {}
    assert main(["keys", "set", "openrouter", "--value", "sk-or-v1-0123abcd"]) == 0
    assert memory.kept == {("recurrentgpt", "openrouter"): "sk-or-v1-0123abcd"}
