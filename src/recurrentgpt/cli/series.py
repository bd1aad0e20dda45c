"""`recurrentgpt series …`: canons shared by the books of a series (loom/series.py): create, join, leave,
show, propose a story's changes, review, accept, reject, and lorebooks in and out of a series."""

from __future__ import annotations

import click

from ..library import Library
from .app import cli, pass_library

KINDS = ("character", "place", "object", "group", "rule", "thread", "event")


@cli.group(name="series", invoke_without_command=True)
@click.pass_context
def series_group(ctx: click.Context) -> None:
    """Series: one canon the books of a series share. A member story's bible starts from the series' entries
    (they reach its prompts like its own) and its own changes apply on top, for that story only. A change
    reaches the series only through `series propose`, then the writer's `series accept` (or `reject`)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_series)


@series_group.command(name="list")
@pass_library
def list_series(library: Library) -> None:
    """Every series: its stories, entries and waiting proposals."""
    found = library.loom.series.listing()
    if not found:
        click.echo("(no series yet: `recurrentgpt series create NAME --from STORY`)")
    for s in found:
        entries = len(library.loom.series.canon(s.name))
        waiting = f", {s.proposed} proposal(s) to review" if s.proposed else ""
        stories = f"{len(s.members)} stor{'y' if len(s.members) == 1 else 'ies'}"
        click.echo(f"{s.name}: {stories}, {entries} entries{waiting}")
        for sid in s.members:
            click.echo(f"  {sid}  {library.loom.story(sid).title}")


@series_group.command()
@click.argument("name")
@click.option("--from", "from_story", metavar="STORY", help="Start the canon as this story's bible (it joins).")
@click.option("--node", "-n", default="head", show_default=True, help="With --from: the bible as of this node.")
@pass_library
def create(library: Library, name: str, from_story: str | None, node: str) -> None:
    """Create a series (empty, or from a story's bible)."""
    n = library.loom.series.create(name, from_story, node)
    click.echo(f"series {name!r} created with {n} entries" + (f"; story {from_story} is in it" if from_story else ""))


@series_group.command()
@click.argument("name")
@pass_library
def show(library: Library, name: str) -> None:
    """The series' canon, one entry a line."""
    entries = library.loom.series.canon(name)
    if not entries:
        click.echo(f"(series {name!r} has no entries yet)")
    for e in entries:
        status = f" [{e.status}]" if e.status else ""
        aka = f" (also {', '.join(e.aliases)})" if e.aliases else ""
        click.echo(f"{'*' if e.pinned else ' '} {e.kind:<9} {e.name}{aka}{status}: {' '.join(e.facts)}")


@series_group.command()
@click.argument("name")
@click.argument("story")
@pass_library
def join(library: Library, name: str, story: str) -> None:
    """STORY joins series NAME (leaving any other): the series' entries reach its prompts."""
    shadowed = library.loom.series.join(name, story)
    click.echo(f"story {story} is in series {name!r}")
    if shadowed:
        click.echo(f"(the series' entry is used for {', '.join(shadowed)}, which the story also has; "
                   f"`recurrentgpt series propose {story} NAME` offers the story's to the series)")


@series_group.command()
@click.argument("story")
@pass_library
def leave(library: Library, story: str) -> None:
    """STORY leaves its series: its prompts lose the series' entries (its own stay)."""
    click.echo(f"story {story} left series {library.loom.series.leave(story)!r}")


@series_group.command()
@click.argument("story")
@click.argument("names", nargs=-1)
@click.option("--node", "-n", default="head", show_default=True, help="The story's bible as of this node.")
@pass_library
def propose(library: Library, story: str, names: tuple[str, ...], node: str) -> None:
    """Offer STORY's version of entries (NAMES, or all that differ) to its series, for review."""
    proposals = library.loom.series.propose(story, list(names), node)
    for p in proposals:
        click.echo(f"#{p.seq} {p.change['op']} {p.change['name']}")
    name = library.loom.series.of(story)
    click.echo(f"({len(proposals)} proposal(s) wait in series {name!r}: `recurrentgpt series review {name}`)")


@series_group.command()
@click.argument("name")
@pass_library
def review(library: Library, name: str) -> None:
    """The proposals waiting in the series, each as what it would change in the canon."""
    from .. import bible as canon
    from ..loom.series import describe

    pending = library.loom.series.proposals(name)
    if not pending:
        click.echo(f"(no proposals wait in series {name!r})")
        return
    current = {e.key: e for e in library.loom.series.canon(name)}
    for p in pending:
        click.echo(f"#{p.seq} from story {p.story_id}: {describe(canon.Change.from_dict(p.change), current)}")
    click.echo(f"(`recurrentgpt series accept {name} [IDS]` makes them canon for every story; `reject` drops them)")


@series_group.command()
@click.argument("name")
@click.argument("ids", nargs=-1, type=int)
@pass_library
def accept(library: Library, name: str, ids: tuple[int, ...]) -> None:
    """Make proposals (all, or IDS) canon for every story of the series; all or none."""
    changes = library.loom.series.accept(name, list(ids))
    click.echo(f"{len(changes)} change(s) accepted into series {name!r}")


@series_group.command()
@click.argument("name")
@click.argument("ids", nargs=-1, type=int)
@pass_library
def reject(library: Library, name: str, ids: tuple[int, ...]) -> None:
    """Drop proposals (all, or IDS); the canon stays as it is."""
    click.echo(f"{library.loom.series.reject(name, list(ids))} proposal(s) rejected")


@series_group.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_library
def delete(library: Library, name: str, yes: bool) -> None:
    """Delete a series; its stories keep their own bibles."""
    if not yes:
        click.confirm(f"delete series {name!r}? its stories lose its entries", abort=True)
    library.loom.series.delete(name)
    click.echo(f"series {name!r} deleted")


@series_group.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--kind", "-k", type=click.Choice(KINDS), default="character", show_default=True,
              help="The kind of an entry whose file does not say.")
@click.option("--dry-run", is_flag=True, help="Only print what would be imported.")
@pass_library
def import_lorebook(library: Library, name: str, file: str, kind: str, dry_run: bool) -> None:
    """Import a lorebook (as `bible STORY import` reads them) into the series' canon: all of it or nothing."""
    from .bible import lorebook_changes

    changes = lorebook_changes(file, {e.key: e for e in library.loom.series.canon(name)}, kind, dry_run, "the series")
    if changes:
        library.loom.series.change(name, changes)
        click.echo(f"(saved in series {name!r})")


@series_group.command("export")
@click.argument("name")
@click.option("--format", "-f", "fmt", type=click.Choice(("st", "card", "novelai")), default="st", show_default=True,
              help="st: SillyTavern World Info JSON; card: a V3 character card (PNG when --out ends in .png); "
                   "novelai: a NovelAI .lorebook.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Write to this file ('-' for stdout).")
@pass_library
def export_lorebook(library: Library, name: str, fmt: str, out: str | None) -> None:
    """Export the series' canon as a lorebook (default file name: from the name, in this folder)."""
    from pathlib import Path

    from .. import lorebooks
    from ..export import safe_filename
    from .app import write_atomically

    png = bool(out and out.lower().endswith(".png"))
    data = lorebooks.export_bytes(fmt, library.loom.series.canon(name), story_title=name, png=png)
    if out == "-":
        click.get_binary_stream("stdout").write(data)
        return
    extension = {"st": "json", "card": "card.json", "novelai": "lorebook"}[fmt]
    target = Path(out) if out else Path(safe_filename(f"{name}-series", extension))
    write_atomically(target, data)
    click.echo(f"wrote {target.resolve()}")
