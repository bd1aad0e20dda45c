"""The command group, its global options and the shared helpers of every command.

Nothing heavy is imported here: `recurrentgpt --help` must start fast.
"""

from __future__ import annotations

import sys
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any, Callable

import click

from ..errors import InputError
from ..library import ENVIRONMENT, RESPONSE_FORMATS, RETRIEVAL_MODES, Library, LibraryOptions
from ..story import MEMORY_OVERFLOWS, MEMORY_UPDATES, Node, Settings

DEFAULTS = LibraryOptions(db="")  # the defaults of the global options (the library's is computed at run time)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="recurrentgpt")
@click.option("--db", envvar=ENVIRONMENT["db"],
              show_default="$RECURRENTGPT_DB, the config file's db, or ~/.local/share/recurrentgpt/library.db",
              help="The story library: an SQLite file, or a postgresql:// URL.")
@click.option("--model", "-m", envvar=ENVIRONMENT["model"], default=DEFAULTS.model, show_default=True,
              help="smollm2 (bundled, offline), a .gguf path, openai:MODEL, a local server by name "
                   "(ollama:NAME, lmstudio:NAME, koboldcpp, llamacpp-server, vllm:NAME), a hosted API "
                   "(openrouter:MODEL, groq:MODEL, deepseek:MODEL, mistral:MODEL, together:MODEL), or scripted.")
@click.option("--base-url", envvar=ENVIRONMENT["base_url"],
              help="The server's address when it is not the preset's, e.g. http://10.0.0.7:8000/v1 "
                   "($OPENAI_BASE_URL moves openai:MODEL only).")
@click.option("--api-key", envvar=ENVIRONMENT["api_key"],
              help="API key for the server --model names (default: the provider's own variable, e.g. "
                   "$OPENROUTER_API_KEY, or the key `recurrentgpt keys set` kept).")
@click.option("--response-format", envvar=ENVIRONMENT["response_format"], type=click.Choice(RESPONSE_FORMATS),
              default=None, show_default="auto, or what the server preset supports",
              help="How to ask an OpenAI-compatible server for structured answers.")
@click.option("--timeout", envvar=ENVIRONMENT["timeout"], type=float, default=DEFAULTS.timeout, show_default=True,
              help="Seconds to wait for a server.")
@click.option("--embedder", "-e", envvar=ENVIRONMENT["embedder"], default=DEFAULTS.embedder, show_default=True,
              help="minilm (bundled, offline), mpnet or embeddinggemma (by their official names, from your "
                   "Hugging Face cache), ollama:NAME, lmstudio:NAME, llamacpp-server[:NAME], st:NAME_OR_PATH, "
                   "openai:MODEL, or hash.")
@click.option("--retrieval", envvar=ENVIRONMENT["retrieval"], type=click.Choice(RETRIEVAL_MODES),
              default=DEFAULTS.retrieval, show_default=True, help="How the long-term memory is searched.")
@click.option("--chunk-words", envvar=ENVIRONMENT["chunk_words"], type=click.IntRange(10, 1000), default=None,
              help="Embed paragraphs in chunks of this many words (default: what the embedder reads; "
                   "40 finds single facts better, at 3-4x the vectors).")
@click.option("--seed", envvar=ENVIRONMENT["seed"], type=int, default=None, help="Random seed, for repeatable runs.")
@click.option("--threads", envvar=ENVIRONMENT["threads"], type=click.IntRange(1, 256), default=None,
              help="CPU threads for the embedded model (default: half the logical cores).")
@click.option("--embedder-url", envvar=ENVIRONMENT["embedder_url"],
              help="The embedding server's address when it is not its preset's (a second llama-server started "
                   "with --embeddings, an Ollama elsewhere).")
@click.option("--num-ctx", envvar=ENVIRONMENT["num_ctx"], type=click.IntRange(512, 1048576), default=None,
              help="Context window to run with where it is ours to set: Ollama's num_ctx, the embedded model's "
                   "(default 8192). Other servers say theirs, and a call that would not fit is refused.")
@click.pass_context
def cli(ctx: click.Context, **options: Any) -> None:
    """RecurrentGPT as a loom: write arbitrarily long text with an LLM, one paragraph per step.

    Each step takes the previous paragraph, a plan, a short-term memory and the relevant long-term
    memory, and writes the next paragraph, the updated memory and three candidate plans. The story is
    a tree: branch, rewind and edit at any step.

    Quick start (offline, bundled model): recurrentgpt demo
    """
    if not options["db"]:
        del options["db"]  # LibraryOptions finds the default library
    ctx.obj = Library(LibraryOptions(**options))


pass_library = click.pass_obj


BIBLE_CHOICE = click.Choice(["manual", "review", "auto", "off"])
BIBLE_HELP = ("The story bible: manual (your entries feed every step; each paragraph is checked against them), "
              "review (the model also proposes changes, you accept them), auto (applied at once; a severe "
              "contradiction is written again once), off.")


def settings_options(command: Callable) -> Callable:
    """Options that set a new story's Settings (defaults: the paper's)."""
    defaults = Settings()
    specs = [
        ("--paragraph-sentences", "paragraph_sentences", int, "Sentences per paragraph."),
        ("--memory-sentences", "memory_sentences", int, "Most sentences in the short-term memory."),
        ("--memory-words", "memory_words", int, "Most words in the short-term memory."),
        ("--plan-sentences", "plan_sentences", int, "Sentences per candidate plan."),
        ("--opening-paragraphs", "opening_paragraphs", int, "Paragraphs written at the start."),
        ("--top-k", "top_k", int, "Long-term paragraphs recalled per step."),
        ("--new-character-probability", "new_character_probability", float,
         "Chance per step of nudging a new character in (paper: 0.1)."),
        ("--language", "language", str, "Prompt language."),
        ("--temperature", "temperature", float, "Sampling temperature."),
        ("--top-p", "top_p", float, "Nucleus sampling: draw from the likeliest tokens holding this much probability."),
        ("--min-p", "min_p", float, "Drop tokens less likely than this share of the likeliest one."),
        ("--top-k-tokens", "top_k_tokens", int, "Draw from this many likeliest tokens (0: all)."),
        ("--repeat-penalty", "repeat_penalty", float, "Above 1, tokens just written are less likely."),
        ("--presence-penalty", "presence_penalty", float, "Above 0, tokens not yet in the text are favoured."),
        ("--retries", "retries", int, "Re-asks when an answer has the wrong shape."),
        ("--simulator", "simulator", click.Choice(["paper", "reference"]),
         "Auto mode's human simulator: the paper's (pick and revise a plan) or the reference code's "
         "(expand the paragraph first)."),
        ("--chapter-paragraphs", "chapter_paragraphs", int,
         "The most paragraphs a chapter has in auto mode: it ends there (0: no limit)."),
        ("--chapter-min-paragraphs", "chapter_min_paragraphs", int,
         "The fewest: before that auto mode does not ask the model whether to end the chapter."),
        ("--bible", "bible", BIBLE_CHOICE, BIBLE_HELP),
        ("--bible-budget", "bible_budget", int, "Most prompt tokens the story bible's entries may add to a step."),
        ("--bible-check", "bible_check", click.Choice(["rules", "model"]),
         "Check each paragraph against the bible by rules only, or also ask the model (one more call a step)."),
        ("--memory-update", "memory_update", click.Choice(MEMORY_UPDATES),
         "How a two-phase step updates the short-term memory: edit (name the sentences to forget, write the ones "
         "to add) or rewrite (the paper's rationale and whole new memory)."),
        ("--memory-overflow", "memory_overflow", click.Choice(MEMORY_OVERFLOWS),
         "An edited memory over its limits: the oldest sentences go (no call), or the model names the ones that "
         "matter least (one more call when it overflows). Pinned sentences always stay."),
    ]
    for flag, name, kind, help_text in reversed(specs):
        command = click.option(flag, name, type=kind, default=getattr(defaults, name), show_default=True,
                               help=help_text)(command)
    command = click.option("--chapter-proposals/--no-chapter-proposals", "chapter_proposals",
                           default=defaults.chapter_proposals, show_default=True,
                           help="Auto mode: the step may propose ending the chapter (with a reason), and the human "
                                "simulator accepts or refuses.")(command)
    command = click.option("--synopsis/--no-synopsis", "synopsis", default=defaults.synopsis, show_default=True,
                           help="Each step also writes a short synopsis of its paragraph, indexed beside it in the "
                                "long-term memory.")(command)
    return click.option("--two-phase/--one-call", "two_phase", default=defaults.two_phase, show_default=True,
                        help="Write each paragraph as free text, then the memory and plans in a second call "
                             "that reuses the first one's context.")(command)


def pop_settings(options: dict[str, Any]) -> Settings:
    """The Settings among a command's options (``settings_options``), taken out of ``options``."""
    names = {f.name for f in dataclass_fields(Settings)}
    return Settings.from_dict({k: options.pop(k) for k in list(options) if k in names})


def read_file_arg(path: str, what: str) -> bytes:
    """A text file named on the command line (an outline, a paragraph, batch jobs), refused by its size first."""
    from ..importing import MAX_MANUSCRIPT_BYTES, read_file

    return read_file(path, what, MAX_MANUSCRIPT_BYTES)


# -- output -----------------------------------------------------------------------------------


class _Live:
    """What the current try has streamed to stdout, so that a discarded try is marked as discarded where its text
    is (stdout, the story's stream) and a kept answer that differs from the last text streamed is shown."""

    streamed: list[str] = []
    discarded = False


def stream_to_stdout(text: str) -> None:
    _Live.streamed.append(text)
    sys.stdout.write(text)
    sys.stdout.flush()


DISCARDED = "[discarded: the text above had the wrong shape and is not part of the story]"


def warn_retry(attempt: int, error: Exception) -> None:
    # only the try asked again is discarded: a call that streamed nothing (the memory and plans) keeps the paragraph
    if getattr(error, "streamed", False) and "".join(_Live.streamed).strip():
        click.echo("\n" + click.style(DISCARDED, fg="red", dim=True) + "\n")
        _Live.discarded = True
        _Live.streamed = []
    click.echo(f"\n(the answer had the wrong shape: {error}; asking again, try {attempt + 1})", err=True)


def show_kept(paragraphs: list[str]) -> None:
    """After a generation: when a try was discarded and the text kept is not what the last try streamed (every try
    was weak and an earlier one was kept), print what was kept."""
    shown = " ".join("".join(_Live.streamed).split())
    kept = [p for p in paragraphs if " ".join(p.split()) not in shown]
    if _Live.discarded and kept:
        click.echo("\n" + click.style("[kept:]", bold=True) + "\n" + "\n\n".join(kept))
    _Live.streamed, _Live.discarded = [], False


def show_plans(node: Node) -> None:
    if not node.plans:
        click.echo("(no candidate plans: write your own)")
    for i, plan in enumerate(node.plans, 1):
        click.echo(click.wrap_text(plan, width=100, initial_indent=f"  {i}. ", subsequent_indent="     "))


def describe_usage(node: Node) -> str:
    u = node.meta.get("usage") or {}
    seconds = u.get("seconds", 0.0) or 0.0
    tokens = u.get("completion_tokens", 0)
    rate = f", {tokens / seconds:.0f} tok/s" if seconds else ""
    return f"{seconds:.1f} s, {tokens} tokens{rate}"


def write_atomically(target: Path, data: str | bytes) -> None:
    """Write via a temporary file and rename, so an interrupted export never leaves half a file."""
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        tmp.replace(target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {target}: {e.strerror}") from None
