"""The default configuration: the TOML file round-trips, and options > environment > file > default,
on the command line and in the web studio's worker factory. API keys never go in the file."""

from __future__ import annotations

import tomllib

import pytest

from recurrentgpt import config
from recurrentgpt.cli import main
from recurrentgpt.errors import ConfigError


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    monkeypatch.setenv("RECURRENTGPT_CONFIG", str(path))
    return path


def test_file_round_trips_every_type_and_awkward_strings(config_file):
    data = {
        "model": 'ollama:qwen2.5:7b "quoted" \\ back\tslash \x7f del ✓',
        "base_url": "http://127.0.0.1:11434/v1",
        "timeout": 30.5,
        "seed": 7,
        "author": "Ada Lovelace",
        "settings": {"paragraph_sentences": 8, "temperature": 0.9, "language": "en"},
    }
    config.save(data)
    assert config.load() == data
    assert tomllib.loads(config_file.read_text("utf-8")) == data  # valid TOML for any reader


def test_set_and_unset_through_the_cli(config_file, capsys):
    assert main(["config", "set", "model", "ollama:llama3.2"]) == 0
    assert main(["config", "set", "settings.paragraph_sentences", "7"]) == 0
    assert main(["config", "set", "timeout", "45"]) == 0
    assert config.load() == {"model": "ollama:llama3.2", "timeout": 45.0, "settings": {"paragraph_sentences": 7}}
    assert main(["config", "unset", "timeout"]) == 0
    assert "timeout" not in config.load()
    capsys.readouterr()
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert str(config_file) in out and "ollama:llama3.2   [config file]" in out


@pytest.mark.parametrize("key, value, message", [
    ("api_key", "sk-secret", "API keys"),
    ("modle", "x", "unknown config key"),
    ("seed", "seven", "seed must be a int"),
    ("settings.nonsense", "1", "unknown setting"),
    ("settings.paragraph_sentences", "many", "must be a int"),
    ("response_format", "yaml", "must be one of"),
])
def test_bad_values_are_refused_before_anything_is_written(config_file, capsys, key, value, message):
    config.save({"model": "scripted"})
    before = config_file.read_bytes()
    assert main(["config", "set", key, value]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert config_file.read_bytes() == before
    assert "sk-secret" not in config_file.read_text()


def test_a_broken_file_is_one_line_naming_it(config_file, capsys):
    config_file.write_text("model = \n")
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert str(config_file) in err and "not valid TOML" in err and len(err.strip().splitlines()) == 1


def test_precedence_option_over_env_over_file_over_default(config_file, capsys, monkeypatch):
    """`config show` reports the value in effect and where it came from, for each level in turn."""
    def effective(*args):
        assert main([*args, "config", "show"]) == 0
        line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("model "))
        return line.split()[1], line.split("[")[1].rstrip("]")

    monkeypatch.delenv("RECURRENTGPT_MODEL", raising=False)
    assert effective() == ("smollm2", "default")
    config.save({"model": "ollama:from-file"})
    assert effective() == ("ollama:from-file", "config file")
    monkeypatch.setenv("RECURRENTGPT_MODEL", "vllm:from-env")
    assert effective() == ("vllm:from-env", "environment")
    assert effective("--model", "scripted") == ("scripted", "option")


def test_the_file_really_drives_a_command(config_file, capsys, tmp_path, monkeypatch):
    """model, embedder and db from the file; settings from [settings] reach `new`; an option still wins."""
    monkeypatch.delenv("RECURRENTGPT_DB", raising=False)
    library = tmp_path / "from-config.db"
    config.save({"model": "scripted", "embedder": "hash", "db": str(library),
                 "settings": {"opening_paragraphs": 4}})
    assert main(["new", "fantasy", "a dragon"]) == 0
    out = capsys.readouterr().out
    assert library.exists()
    sid = out.split("(story ")[1].split(")")[0]
    assert main(["show", sid, "--no-plans"]) == 0
    assert "4 paragraphs" in capsys.readouterr().out
    assert main(["new", "fantasy", "a dragon", "--opening-paragraphs", "2"]) == 0
    capsys.readouterr()


def test_author_from_the_file_reaches_export(config_file, capsys, tmp_path):
    import docx

    config.save({"model": "scripted", "embedder": "hash", "author": "Mary Shelley"})
    assert main(["new", "gothic", "a made man", "--opening-paragraphs", "2"]) == 0
    sid = capsys.readouterr().out.split("(story ")[1].split(")")[0]
    target = tmp_path / "m.docx"
    assert main(["export", sid, "-f", "docx", "-o", str(target)]) == 0
    assert docx.Document(str(target)).core_properties.author == "Mary Shelley"


def test_web_worker_factory_reads_the_file_below_the_environment(config_file, tmp_path, monkeypatch):
    from recurrentgpt.web.app import app_from_env

    for name in ("RECURRENTGPT_MODEL", "RECURRENTGPT_EMBEDDER", "RECURRENTGPT_DB"):
        monkeypatch.delenv(name, raising=False)
    config.save({"model": "scripted", "embedder": "hash", "db": str(tmp_path / "web.db")})
    app = app_from_env()
    loom = app.state.loom
    assert (loom.model_name, loom.embedder_name) == ("scripted", "hash-256")
    assert str(tmp_path / "web.db") in str(loom.store.location)
    loom.close()
    monkeypatch.setenv("RECURRENTGPT_EMBEDDER", "hash")
    monkeypatch.setenv("RECURRENTGPT_MODEL", "ollama:env-wins")
    app = app_from_env()
    assert app.state.loom.model_name == "ollama:env-wins"
    app.state.loom.close()


def test_resolve_precedence():
    file = {"model": "from-file"}
    env = {"M": "from-env"}
    assert config.resolve("model", "from-option", "M", file=file, environ=env) == "from-option"
    assert config.resolve("model", None, "M", file=file, environ=env) == "from-env"
    assert config.resolve("model", None, "M", file=file, environ={}) == "from-file"
    assert config.resolve("model", None, "M", file={}, environ={}, default="d") == "d"


def test_secrets_are_refused_in_a_hand_written_file(config_file):
    config_file.write_text('api_key = "sk-secret"\n')
    with pytest.raises(ConfigError, match="API keys"):
        config.load()


def test_web_export_takes_the_author_from_the_file(config_file, tmp_path, model, embedder):
    import io

    import docx
    from fastapi.testclient import TestClient

    from recurrentgpt import Loom
    from recurrentgpt.web import create_app

    config.save({"author": "Mary Shelley", "address": "Villa Diodati; Cologny", "email": "mary@example.org"})
    loom = Loom.open(tmp_path / "w.db", model, embedder)
    info = loom.new_story("gothic", "a made man")
    with TestClient(create_app(loom), base_url="http://127.0.0.1:8765") as client:
        data = client.get(f"/api/stories/{info.id}/export", params={"fmt": "docx"}).content
        document = docx.Document(io.BytesIO(data))
        assert document.core_properties.author == "Mary Shelley"
        assert [p.text for p in document.paragraphs[1:4]] == ["Villa Diodati", "Cologny", "mary@example.org"]
        data = client.get(f"/api/stories/{info.id}/export", params={"fmt": "docx", "author": "Ada"}).content
        assert docx.Document(io.BytesIO(data)).core_properties.author == "Ada"
    loom.close()


def test_the_config_file_takes_every_choice_the_command_line_does():
    """The file's allowed values are the library's own (``RETRIEVAL_MODES``, ``RESPONSE_FORMATS``): seen failing
    with the copy the config module kept, which refused ``retrieval = "weighted"``."""
    from recurrentgpt.library import RESPONSE_FORMATS, RETRIEVAL_MODES

    for mode in RETRIEVAL_MODES:
        assert config.validate({"retrieval": mode}) == {"retrieval": mode}
    for fmt in RESPONSE_FORMATS:
        assert config.validate({"response_format": fmt}) == {"response_format": fmt}
