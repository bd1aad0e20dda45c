"""The user's default configuration: a small TOML file, so nobody types ``--model … --base-url …`` twice.

    ~/.config/recurrentgpt/config.toml      ($XDG_CONFIG_HOME, %APPDATA% on Windows; $RECURRENTGPT_CONFIG to move it)

    model = "ollama:qwen2.5:7b-instruct"
    embedder = "minilm"
    author = "Ada Lovelace"
    address = "12 Harbour Lane; Saltmarsh SM1 2AB"   # and legal_name, phone, email, surname: a DOCX title page

    [settings]                              # a new story's Settings (see story.py)
    paragraph_sentences = 8

Precedence, highest first: a command-line option, its environment variable, this file, the built-in
default (``resolve``). The command line gets there through click's ``default_map``, which click
consults after the option and its environment variable and before the default. API keys are never
written here (or to the library): they stay in the environment (each provider's own variable, such as
``OPENROUTER_API_KEY``) or the OS keyring (``recurrentgpt keys set``; keys.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError
from .library import RESPONSE_FORMATS, RETRIEVAL_MODES
from .story import Settings

# key -> (type, what it is); the global options of the CLI, plus the author of exported books
KEYS: dict[str, tuple[type, str]] = {
    "model": (str, "the model (--model)"),
    "base_url": (str, "the server's address (--base-url)"),
    "response_format": (str, f"{', '.join(RESPONSE_FORMATS)} (--response-format)"),
    "timeout": (float, "seconds to wait for a server (--timeout)"),
    "embedder": (str, "the embedder (--embedder)"),
    "retrieval": (str, f"{', '.join(RETRIEVAL_MODES)} (--retrieval)"),
    "chunk_words": (int, "embed paragraphs in chunks of this many words (--chunk-words)"),
    "seed": (int, "random seed (--seed)"),
    "threads": (int, "CPU threads for the embedded model (--threads)"),
    "embedder_url": (str, "the embedding server's address when it is not its preset's (--embedder-url)"),
    "num_ctx": (int, "the context window where it is ours to set: Ollama, the embedded model (--num-ctx)"),
    "db": (str, "the story library (--db)"),
    "author": (str, "author name on exported epub/docx title pages (export --author)"),
    # a DOCX manuscript's title page and running header
    "surname": (str, "the surname in a DOCX manuscript's running header (export --surname; default: from author)"),
    "legal_name": (str, "the name in a DOCX manuscript's contact block, when the author is a pen name"),
    "address": (str, "the postal address in a DOCX manuscript's contact block (lines separated by ';')"),
    "phone": (str, "the phone number in a DOCX manuscript's contact block"),
    "email": (str, "the email address in a DOCX manuscript's contact block"),
}
CONTACT = ("legal_name", "address", "phone", "email", "surname")  # books.Contact's fields
CHOICES = {"response_format": RESPONSE_FORMATS, "retrieval": RETRIEVAL_MODES}
SETTINGS: dict[str, type] = {f.name: type(f.default) for f in dataclasses.fields(Settings)}
SECRETS = ("api_key", "openai_api_key", "token", "password")
ENV_PATH = "RECURRENTGPT_CONFIG"


def path() -> Path:
    if os.environ.get(ENV_PATH):
        return Path(os.environ[ENV_PATH]).expanduser()
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        base = Path(os.environ["APPDATA"])
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "recurrentgpt" / "config.toml"


def _coerce(key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and kind is not str:  # from `config set KEY VALUE`
        try:
            return {"true": True, "false": False}[value.lower()] if kind is bool else kind(value)
        except (KeyError, ValueError):
            raise ConfigError(f"{key} must be a {kind.__name__}, not {value!r}") from None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"{key} must be a {kind.__name__}, not {value!r}")
    return value


def validate(data: Mapping[str, Any]) -> dict[str, Any]:
    """Known keys of the right type; anything else is a mistake worth one clear line."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key.lower() in SECRETS:
            raise ConfigError(f"'{key}' does not belong in the config file: keep API keys in the environment "
                              "(the provider's own variable, e.g. OPENROUTER_API_KEY) or the OS keyring "
                              "(`recurrentgpt keys set NAME`)")
        if key == "settings":
            if not isinstance(value, dict):
                raise ConfigError("[settings] must be a table")
            settings = {}
            for name, v in value.items():
                if name not in SETTINGS:
                    raise ConfigError(f"unknown setting '{name}' (known: {', '.join(SETTINGS)})")
                settings[name] = _coerce(f"settings.{name}", v, SETTINGS[name])
            out["settings"] = settings
            continue
        if key not in KEYS:
            raise ConfigError(f"unknown config key '{key}' (known: {', '.join(KEYS)}, settings.NAME)")
        out[key] = _coerce(key, value, KEYS[key][0])
        if key in CHOICES and out[key] not in CHOICES[key]:
            raise ConfigError(f"{key} must be one of {', '.join(CHOICES[key])}, not {value!r}")
    return out


def load(file: Path | None = None) -> dict[str, Any]:
    """The file's values ({} when there is none)."""
    file = file or path()
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ConfigError(f"cannot read the config file {file}: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"the config file {file} is not valid TOML ({e}); fix or delete it") from None
    try:
        return validate(data)
    except ConfigError as e:
        raise ConfigError(f"{file}: {e}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    # a JSON string is a TOML basic string, except that TOML also wants DEL escaped
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007F")


def dumps(data: Mapping[str, Any]) -> str:
    lines = ["# recurrentgpt configuration: `recurrentgpt config` shows it, `config set KEY VALUE` changes it.",
             "# Options and environment variables override it. API keys never go here."]
    lines += [f"{k} = {_toml_value(v)}" for k, v in data.items() if k != "settings"]
    if data.get("settings"):
        lines += ["", "[settings]"] + [f"{k} = {_toml_value(v)}" for k, v in data["settings"].items()]
    return "\n".join(lines) + "\n"


def save(data: Mapping[str, Any], file: Path | None = None) -> Path:
    """Write atomically (a temporary file, then a rename): an interrupted save leaves the old file."""
    file = file or path()
    text = dumps(validate(data))
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(file)
    except OSError as e:
        raise ConfigError(f"cannot write the config file {file}: {e.strerror}") from None
    return file


def set_value(data: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    """``model`` or ``settings.paragraph_sentences``; the value is checked before anything is written."""
    updated = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    if key.startswith("settings."):
        updated.setdefault("settings", {})[key.removeprefix("settings.")] = value
    else:
        updated[key] = value
    return validate(updated)


def unset_value(data: dict[str, Any], key: str) -> dict[str, Any]:
    updated = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    if key.startswith("settings."):
        updated.get("settings", {}).pop(key.removeprefix("settings."), None)
        if not updated.get("settings"):
            updated.pop("settings", None)
    elif updated.pop(key, None) is None and key not in KEYS:
        raise ConfigError(f"unknown config key '{key}'")
    return updated


def resolve(name: str, option: Any = None, env_var: str | None = None, *, file: Mapping[str, Any] | None = None,
            default: Any = None, environ: Mapping[str, str] | None = None) -> Any:
    """One value by precedence: option > environment variable > config file > default
    (for code that does not go through click, such as the web studio's worker factory)."""
    if option is not None:
        return option
    environ = os.environ if environ is None else environ
    if env_var and environ.get(env_var):
        return environ[env_var]
    values = load() if file is None else file
    if name in values:
        return values[name]
    return default


def contact(data: Mapping[str, Any], surname: str = "") -> Any:
    """A DOCX manuscript's contact block and surname (``books.Contact``) from the file's values."""
    from .books import Contact

    values = {k: str(data[k]) for k in CONTACT if data.get(k)}
    if surname:
        values["surname"] = surname
    return Contact(**values)


def default_map(data: Mapping[str, Any], commands: Mapping[str, Any]) -> dict[str, Any]:
    """click's ``default_map`` for the CLI group: the global keys at the top, the settings for every
    command that takes them, the author and surname for ``export``."""
    out: dict[str, Any] = {k: v for k, v in data.items() if k not in ("settings", "author", *CONTACT)}
    for name, command in commands.items():
        params = {p.name for p in getattr(command, "params", [])}
        sub = {k: v for k, v in (data.get("settings") or {}).items() if k in params}
        for key in ("author", "surname"):
            if key in data and key in params:
                sub[key] = data[key]
        if sub:
            out[name] = sub
    return out
