"""API keys, one per hosted provider, never sent to a server they were not set for (as simonw/llm keeps them).

Where the key for a call comes from, first found wins:

    --api-key / $RECURRENTGPT_API_KEY     for the server this command names, whichever it is (typed for it)
    the provider's own variable           $OPENAI_API_KEY only to api.openai.com, $OPENROUTER_API_KEY only to
                                          openrouter.ai, $GROQ_API_KEY, $DEEPSEEK_API_KEY, $MISTRAL_API_KEY,
                                          $TOGETHER_API_KEY likewise (models/presets.py)
    the OS keyring                        `recurrentgpt keys set openrouter` (the optional `keyring` library)

A provider's key goes only to that provider's own address: a preset pointed elsewhere with --base-url, an
OpenAI-compatible server named by $OPENAI_BASE_URL and every local server get none of them. Keys are never
written to the config file or the library. A key whose prefix plainly names another provider (sk-or-, gsk_ …) is
refused before any request. The keyring is optional: without the library, or where it finds no
backend (a headless Linux without a Secret Service), the environment variables still work and `keys set` says so.
"""

from __future__ import annotations

import os
from typing import Any, Mapping
from urllib.parse import urlsplit

from .errors import ConfigError
from .models.presets import HOSTED, PRESETS, Preset

SERVICE = "recurrentgpt"  # the keyring's service name; each key's user name is the provider's preset name
EXPLICIT_ENV = "RECURRENTGPT_API_KEY"


def same_host(url: str, other: str) -> bool:
    """Do two addresses name the same host (scheme and port aside: https://api.openai.com/v1 and …:443)?"""
    a, b = urlsplit(url).hostname, urlsplit(other).hostname
    return bool(a) and a == b


def provider_for(base_url: str) -> Preset | None:
    """The hosted provider whose own address ``base_url`` is, if any."""
    return next((PRESETS[n] for n in HOSTED if same_host(base_url, PRESETS[n].base_url)), None)


def resolve(preset: Preset | None, base_url: str, explicit: str | None = None,
            environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(the key for a call to ``base_url``, where it came from); ("", "none") when no key applies.
    ``preset``: the server or provider the model spec named (None: a bare OpenAI-compatible address)."""
    if explicit:
        return explicit, "--api-key"
    environ = os.environ if environ is None else environ
    provider = preset if preset is not None and preset.hosted else None
    if provider is None or not same_host(base_url, provider.base_url):
        return "", "none"  # a provider's key goes to that provider only
    assert provider.key_env is not None
    if environ.get(provider.key_env):
        return environ[provider.key_env], f"${provider.key_env}"
    stored = _stored(provider.name)
    if stored:
        return stored, "keyring"
    return "", "none"


# Prefixes the providers put on their own keys, each used by no other provider (OpenAI's plain "sk-" is DeepSeek's
# too, so only OpenAI's project, service-account and admin keys are told apart): (prefix, provider, in words).
KEY_PREFIXES = (
    ("sk-or-", "openrouter", "an OpenRouter key"),
    ("sk-ant-", None, "an Anthropic key"),
    ("sk-proj-", "openai", "an OpenAI key"),
    ("sk-svcacct-", "openai", "an OpenAI key"),
    ("sk-admin-", "openai", "an OpenAI key"),
    ("gsk_", "groq", "a Groq key"),
)


def _foreign(preset: Preset, key: str) -> tuple[str, str | None, str] | None:
    """(prefix, its provider or None, in words) when ``key`` plainly belongs to a provider other than ``preset``."""
    return next(((prefix, owner, words) for prefix, owner, words in KEY_PREFIXES
                 if key.startswith(prefix) and owner != preset.name), None)


def refuse_foreign(preset: Preset | None, base_url: str, key: str, source: str) -> None:
    """Refuse, before any request, a key bound for a hosted provider's own address that plainly belongs to another
    provider: sending it would hand one provider's key to another."""
    if not key or preset is None or not preset.hosted or not same_host(base_url, preset.base_url):
        return
    foreign = _foreign(preset, key)
    if foreign is None:
        return
    prefix, owner, words = foreign
    where = "the key in --api-key" if source == "--api-key" else (
        f"the key kept in the OS keyring for {preset.name}" if source == "keyring" else f"the key in {source}")
    if owner is None:
        fix = f"which no preset takes: give {preset.label} its own key (${preset.key_env})"
    else:
        fix = f"not {preset.label}'s: put it in ${PRESETS[owner].key_env} (for {owner}:MODEL)"
    raise ConfigError(f"{where} looks like {words} (it starts {prefix}), {fix}; nothing was sent")


# -- the OS keyring (optional) ---------------------------------------------------------------------------------


def _keyring() -> Any:
    try:
        import keyring
    except ImportError:
        return None
    return keyring


def _stored(name: str) -> str | None:
    """The key kept in the keyring under ``name``; None without the library, a backend or a key (reading a key
    is never what fails a command: the environment variables still work)."""
    keyring = _keyring()
    if keyring is None:
        return None
    try:
        return keyring.get_password(SERVICE, name) or None
    except Exception:  # keyring.errors.NoKeyringError and a locked or broken backend alike
        return None


def check_name(name: str) -> Preset:
    if name not in HOSTED:
        raise ConfigError(f"keys are kept for the hosted providers only: {', '.join(HOSTED)} (not '{name}'); "
                          "a local server's key goes in --api-key or $RECURRENTGPT_API_KEY")
    return PRESETS[name]


def _backend_or_fail(name: str) -> Any:
    preset = check_name(name)
    keyring = _keyring()
    if keyring is None:
        raise ConfigError(f"the keyring library is not installed, so no key can be kept: pip install "
                          f"'recurrentgpt[keys]', or set ${preset.key_env} in the environment")
    from keyring.backends import fail

    if isinstance(keyring.get_keyring(), fail.Keyring):
        raise ConfigError(f"no OS keyring is available here (the keyring library found no backend, as on a headless "
                          f"Linux without a Secret Service): set ${preset.key_env} in the environment instead")
    return keyring


def store(name: str, key: str) -> str:
    """Keep ``key`` for provider ``name``; returns the keyring backend's name."""
    keyring = _backend_or_fail(name)
    if not key.strip():
        raise ConfigError("the key is empty: nothing was stored")
    foreign = _foreign(PRESETS[name], key.strip())
    if foreign is not None:
        prefix, owner, words = foreign
        fix = f"`recurrentgpt keys set {owner}`" if owner else "no preset takes it"
        raise ConfigError(f"this key looks like {words} (it starts {prefix}), not {PRESETS[name].label}'s: {fix}; "
                          "nothing was stored")
    try:
        keyring.set_password(SERVICE, name, key.strip())
    except Exception as e:
        raise ConfigError(f"the OS keyring refused the key ({type(e).__name__}: {e})") from None
    return describe_backend()


def remove(name: str) -> bool:
    """Forget provider ``name``'s key; False when none was kept."""
    keyring = _backend_or_fail(name)
    try:
        if keyring.get_password(SERVICE, name) is None:
            return False
        keyring.delete_password(SERVICE, name)
    except Exception as e:
        raise ConfigError(f"the OS keyring refused ({type(e).__name__}: {e})") from None
    return True


def describe_backend() -> str:
    """Which keyring would keep keys here, in words."""
    keyring = _keyring()
    if keyring is None:
        return "none (the keyring library is not installed: pip install 'recurrentgpt[keys]')"
    from keyring.backends import fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        return "none (the keyring library found no backend here)"
    return f"{type(backend).__module__}.{type(backend).__name__}"


def sources(environ: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(provider, its variable, where its key would come from now: "$VAR", "keyring" or "none") for every
    hosted provider; no key is shown."""
    environ = os.environ if environ is None else environ
    out = []
    for name in HOSTED:
        preset = PRESETS[name]
        _, source = resolve(preset, preset.base_url, None, environ)
        out.append((name, preset.key_env or "", source))
    return out
