"""Library commands: list, export, import, delete."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from ..errors import InputError
from ..export import BINARY_FORMATS, EXTENSIONS, FORMATS, safe_filename
from ..library import Library
from . import progress
from .app import cli, pass_library, pop_settings, settings_options, show_plans, warn_retry, write_atomically


@cli.command(name="list")
@pass_library
def list_stories(library: Library) -> None:
    """List the stories in the library."""
    stories = library.loom.stories()
    if not stories:
        click.echo("no stories yet: try `recurrentgpt demo` or `recurrentgpt new GENRE TOPIC`")
    for s in stories:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated_at))
        nodes = len(library.loom.tree(s.id))
        click.echo(f"{s.id}  {when}  {s.mode:7}  {nodes:5} nodes  {s.title}  ({s.genre})")


@cli.command()
@click.argument("story")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="md", show_default=True,
              help="md/txt/json/epub/docx: the path to --node (docx in standard manuscript format); "
                   "tree: the whole tree as JSON (re-importable).")
@click.option("--node", "-n", default="head", show_default=True, help="The node whose path is exported.")
@click.option("--author", default="", help="Author name for the epub/docx title page.")
@click.option("--surname", default="", help="docx: the surname in the running header (default: from --author, "
                                            "keeping particles such as 'Le Guin').")
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Write to this file ('-' for stdout).")
@click.option("--canon", is_flag=True, help="md: end with the story bible as an appendix.")
@pass_library
def export(library: Library, story: str, fmt: str, node: str, author: str, surname: str, out: str | None,
           canon: bool) -> None:
    """Export a story path or the whole tree (default file name: from the title, in this folder).

    A docx's contact block (legal_name, address, phone, email) comes from the config file."""
    info = library.loom.story(story)
    if canon and fmt == "md":
        data = library.loom.export(info.id, fmt, node, canon_appendix=True).encode("utf-8")
    elif fmt == "docx":
        from .. import config as user_config

        contact = user_config.contact(user_config.load(), surname)
        data = library.loom.export_bytes(info.id, fmt, node, author=author, contact=contact)
    else:
        data = library.loom.export_bytes(info.id, fmt, node, author=author)
    if out == "-":
        if fmt in BINARY_FORMATS:
            click.get_binary_stream("stdout").write(data)
        else:
            click.echo(data.decode("utf-8"), nl=False)
        return
    target = Path(out) if out else Path(safe_filename(info.title, EXTENSIONS[fmt]))
    write_atomically(target, data)
    click.echo(f"wrote {target.resolve()}")


@cli.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--genre", help="Genre of the manuscript (not needed for a tree file).")
@click.option("--title", default="", help="Title (default: the model suggests one).")
@click.option("--tree", "is_tree", is_flag=True, help="FILE is a tree exported with `export --format tree`.")
@click.option("--synopses", "with_synopses", is_flag=True,
              help="Then have the model write each paragraph's synopsis for the long-term memory "
                   "(as the `synopses` command does; one call per few paragraphs).")
@settings_options
@pass_library
def import_(library: Library, file: str, genre: str | None, title: str, is_tree: bool, with_synopses: bool,
            **options: Any) -> None:
    """Import a manuscript to continue it (text, Markdown, DOCX, EPUB or ODT: its headings become chapters,
    its italics *emphasis*, its title and author come from the file), or an exported tree."""
    from ..importing import MAX_BOOK_BYTES, read_file, read_manuscript

    raw = read_file(file, "the import file", MAX_BOOK_BYTES)  # refused by its size before it is read
    if is_tree:
        info = library.loom.import_tree(raw)
        click.echo(f"imported story {info.id}: {info.title} ({len(library.loom.tree(info.id))} nodes)")
        if with_synopses:
            write_synopses(library, info.id)
        return
    if not genre:
        raise InputError("importing a manuscript needs --genre")
    manuscript = read_manuscript(raw, f"the manuscript {file}")  # all of it read and checked before a write
    click.echo("Reading the manuscript…", err=True)
    on_progress = progress.LazyBar("paragraph", "embedding")  # embedding a novel takes minutes: show it
    try:
        info = library.loom.import_manuscript(manuscript, genre=genre, title=title, settings=pop_settings(options),
                                              on_retry=warn_retry, on_progress=on_progress)
    finally:
        on_progress.close()
    head = library.loom.node(info.id)
    chapters = f"{len(manuscript.chapters)} chapters, " if manuscript.has_chapters else ""
    by = f" by {manuscript.author}" if manuscript.author else ""
    click.echo(f"imported story {info.id}: {info.title}{by} ({chapters}{head.depth + 1} paragraphs)\n")
    if with_synopses:
        write_synopses(library, info.id)
    click.echo(f"Short-term memory:\n  {head.short_memory}\n\nCandidate plans:")
    show_plans(head)


@cli.command()
@click.argument("story")
@click.option("--batch", type=click.IntRange(1, 32), default=8, show_default=True, help="Paragraphs per model call.")
@pass_library
def synopses(library: Library, story: str, batch: int) -> None:
    """Write the synopses the story's paragraphs lack, for the long-term memory.

    Each step writes its own paragraph's synopsis ("who does what, where"), indexed beside the paragraph so
    that a plan finds it; an imported manuscript or an older story has none until this runs. Interrupting
    keeps the synopses written so far; running it again continues."""
    write_synopses(library, library.loom.story(story).id, batch)


def write_synopses(library: Library, story_id: str, batch: int = 8) -> None:
    """The backfill with a bar (on a terminal) and a one-line summary."""
    on_progress = progress.LazyBar("paragraph", "synopses")
    try:
        report = library.loom.write_synopses(story_id, batch=batch, on_progress=on_progress, on_retry=warn_retry)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: the synopses written so far are saved; run `synopses` again to continue", err=True)
        raise click.exceptions.Exit(130) from None
    finally:
        on_progress.close()
    if not report.calls:
        click.echo("every paragraph has a synopsis")
        return
    click.echo(f"{report.written} synopses written in {report.calls} call{'s' if report.calls != 1 else ''}"
               + (f"; {report.dropped} paragraphs still have none (the model's answer was unusable: run "
                  f"`synopses` again to retry them)" if report.dropped else ""))
    for warning in report.warnings:
        click.echo(f"  dropped: {warning}", err=True)


@cli.command()
@click.argument("story")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_library
def delete(library: Library, story: str, yes: bool) -> None:
    """Delete a story and all its branches."""
    info = library.loom.story(story)
    if not yes and not click.confirm(f"Delete '{info.title}' ({info.id}) and all its branches?"):
        raise click.Abort()
    library.loom.delete_story(info.id)
    click.echo(f"deleted {info.id}")
