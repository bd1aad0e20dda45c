"""`recurrentgpt bible STORY …`: the story bible (canon) at a node: list, show, add, edit, pin, remove,
history, accept, and lorebooks in and out (import, export). Every change is a new version of the node,
like `edit`."""

from __future__ import annotations

from typing import Any

import click

from ..library import Library
from ..story import Node
from .app import cli

KINDS = ("character", "place", "object", "group", "rule", "thread", "event")


class StoryFirstGroup(click.Group):
    """``bible STORY [--node N] COMMAND …``, forgiving where a writer puts things: the group's ``--node`` may also
    come after the story or the command, and ``bible COMMAND --help`` is that command's help (click would read
    the command's name as the story)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] in self.commands and not set(args) & set(ctx.help_option_names):
            raise click.UsageError(f"give the story first: recurrentgpt bible STORY {args[0]} …", ctx)
        if args and args[0] in self.commands:
            command = self.commands[args[0]]
            with command.make_context(f"{ctx.command_path} STORY {args[0]}", ["--help"], parent=ctx):
                pass  # (--help prints the command's help and exits)
        mine, rest, i = [], [], 0
        while i < len(args):  # the group's own option, wherever it is (no command of the group has a -n)
            if args[i] in ("-n", "--node") and i + 1 < len(args):
                mine, i = [*mine, args[i], args[i + 1]], i + 2
            elif args[i].startswith("--node="):
                mine, i = [*mine, args[i]], i + 1
            else:
                rest, i = [*rest, args[i]], i + 1
        return super().parse_args(ctx, mine + rest)


@cli.group(cls=StoryFirstGroup, invoke_without_command=True)
@click.argument("story")
@click.option("--node", "-n", default="head", show_default=True, help="The bible as of this node.")
@click.pass_context
def bible(ctx: click.Context, story: str, node: str) -> None:
    """The story bible: characters, places, objects, rules and open threads the story must not contradict.

    Without a command, lists the entries. Entries named in the plan, the previous paragraph, the memory
    or the recalled paragraphs (or pinned, or close to the plan in meaning) are shown to every step."""
    ctx.obj = (ctx.obj, story, node)
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_entries)


def _args(ctx: click.Context) -> tuple[Library, str, str]:
    return ctx.obj  # type: ignore[return-value]


def _saved(node: Node, library: Library | None = None, names: list[str] | None = None) -> None:
    click.echo(f"(the canon changed at node {node.meta.get('edited_from')}: saved as its new version {node.id}, "
               f"the same paragraph; the head is there now)")
    series = library.loom.series.of(node.story_id) if library and names else None
    if series:  # a series entry changed here changes in this story only, until the writer proposes it
        from ..bible import key

        shared = {e.key: e.name for e in library.loom.series.canon(series)}  # type: ignore[union-attr]
        touched = [shared[key(n)] for n in names or () if key(n) in shared]
        if touched:
            quoted = " ".join(f'"{n}"' for n in touched)
            click.echo(f"({', '.join(touched)}: of series {series!r}, changed in this story only; "
                       f"`recurrentgpt series propose {node.story_id} {quoted}` offers the change to the series)")


@bible.command("list")
@click.pass_context
def list_entries(ctx: click.Context) -> None:
    """Every entry, one line each."""
    library, story, node = _args(ctx)
    entries = library.loom.bible(story, node)
    if not entries:
        click.echo("(the bible is empty: add an entry with `recurrentgpt bible STORY add NAME --kind … --fact …`)")
    series = library.loom.series.of(story)
    shared = {e.key: e for e in library.loom.series.canon(series)} if series else {}
    for e in entries:
        pin = "*" if e.pinned else " "
        status = f" [{e.status}]" if e.status else ""
        aka = f" (also {', '.join(e.aliases)})" if e.aliases else ""
        origin = "" if e.key not in shared else " {series}" if shared[e.key] == e else " {series, changed here}"
        click.echo(f"{pin} {e.kind:<9} {e.name}{aka}{status}{origin}")
    if series:
        click.echo(f"\n(in series {series!r}: {{series}} entries are shared; `recurrentgpt series propose {story}` "
                   f"offers what changed here)")
    proposed = library.loom.node(story, node).meta.get("bible_proposed")
    if proposed:
        click.echo(f"\n{len(proposed)} change(s) proposed at this node: `recurrentgpt bible {story} proposed`")


@bible.command()
@click.argument("name")
@click.pass_context
def show(ctx: click.Context, name: str) -> None:
    """One entry in full."""
    library, story, node = _args(ctx)
    e = library.loom.bible_entry(story, name, node)
    click.echo(f"{e.name} ({e.kind}){' — pinned' if e.pinned else ''}")
    if e.aliases:
        click.echo(f"  also called: {', '.join(e.aliases)}")
    if e.status:
        click.echo(f"  status: {e.status}{' (the writer’s)' if e.writer_status else ''}")
    for fact in e.facts:
        click.echo(f"  - {fact}{' (the writer’s)' if fact in e.writer_facts else ''}")
    from ..bible import contradictions

    for a, b in contradictions(e):
        click.echo(click.style("  contradicts itself: ", fg="red") + f"{a!r} and {b!r}")


def _change(op: str, name: str, **fields: Any):
    from ..bible import Change

    clean = {k: (tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in fields.items() if v not in (None, ())}
    return Change(op, name, **clean)


@bible.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--kind", "-k", type=click.Choice(KINDS), default="character", show_default=True)
@click.option("--alias", "-a", "aliases", multiple=True, help="Another name it goes by (repeat; one entry only).")
@click.option("--fact", "-f", "facts", multiple=True, help="A short fact (repeat).")
@click.option("--status", "-s", help="e.g. alive, dead, missing, held by Mara, open, resolved.")
@click.option("--pin", is_flag=True, help="Show it to every step, named or not.")
@click.pass_context
def add(ctx: click.Context, names: tuple[str, ...], kind: str, aliases: tuple[str, ...], facts: tuple[str, ...],
        status: str | None, pin: bool) -> None:
    """Add one entry, or several of the same kind (and facts, status) in one change of the canon."""
    library, story, node = _args(ctx)
    if aliases and len(names) > 1:
        from ..errors import InputError

        raise InputError("--alias names another name of one entry: add the entries one by one to give aliases")
    _saved(library.loom.change_bible(story, [_change("add", name, kind=kind, aliases=aliases, facts=facts,
                                                 status=status, pinned=pin) for name in names], node))


@bible.command()
@click.argument("name")
@click.option("--kind", "-k", type=click.Choice(KINDS))
@click.option("--alias", "-a", "aliases", multiple=True, help="Replace the aliases (repeat).")
@click.option("--fact", "-f", "facts", multiple=True, help="Replace the facts (repeat).")
@click.option("--add-fact", "add_facts", multiple=True, help="Add a fact (repeat).")
@click.option("--status", "-s")
@click.option("--rename")
@click.pass_context
def edit(ctx: click.Context, name: str, kind: str | None, aliases: tuple[str, ...], facts: tuple[str, ...],
         add_facts: tuple[str, ...], status: str | None, rename: str | None) -> None:
    """Change an entry (what is not given stays)."""
    library, story, node = _args(ctx)
    change = _change("update", name, kind=kind, aliases=aliases or None, facts=facts or None, add_facts=add_facts,
                     status=status, rename=rename)
    if change.to_dict().keys() <= {"op", "name"}:
        from ..errors import InputError

        raise InputError("nothing to change: give --kind, --alias, --fact, --add-fact, --status or --rename")
    _saved(library.loom.change_bible(story, [change], node), library, [name])


@bible.command()
@click.argument("name")
@click.option("--off", is_flag=True, help="Unpin it.")
@click.pass_context
def pin(ctx: click.Context, name: str, off: bool) -> None:
    """Show an entry to every step (or stop, with --off)."""
    library, story, node = _args(ctx)
    entry = library.loom.bible_entry(story, name, node)
    _saved(library.loom.change_bible(story, [_change("update", entry.name, pinned=not off)], node), library,
           [entry.name])


@bible.command()
@click.argument("name")
@click.pass_context
def remove(ctx: click.Context, name: str) -> None:
    """Retire an entry (the nodes before this one keep it: see `history`)."""
    library, story, node = _args(ctx)
    entry = library.loom.bible_entry(story, name, node)
    _saved(library.loom.change_bible(story, [_change("remove", entry.name)], node), library, [entry.name])


@bible.command()
@click.argument("name")
@click.pass_context
def history(ctx: click.Context, name: str) -> None:
    """How an entry changed along the path to the node, and who changed it."""
    library, story, node = _args(ctx)
    changes = library.loom.bible_history(story, name, node)
    if not changes:
        click.echo(f"(no change to {name!r} along this path)")
    for n, c in changes:
        d = c.to_dict()
        what = ", ".join(f"{k}={v}" for k, v in d.items() if k not in ("op", "name", "reason", "by"))
        reason = f" — {c.reason}" if c.reason else ""
        click.echo(f"depth {n.depth:>4}  node {n.id}  {c.by:<6} {c.op} {c.name}{': ' + what if what else ''}{reason}")


@bible.command()
@click.pass_context
def proposed(ctx: click.Context) -> None:
    """The changes the model proposed at the node (review mode), to accept or ignore."""
    library, story, node = _args(ctx)
    n = library.loom.node(story, node)
    for d in n.meta.get("bible_proposed", []):
        facts = " ".join(d.get("facts", []) + d.get("add_facts", []))
        status = f" [{d['status']}]" if d.get("status") else ""
        reason = f" — {d['reason']}" if d.get("reason") else ""
        click.echo(f"{d['op']} {d['name']}{status}: {facts}{reason}")
    for w in n.meta.get("bible_warnings", []):
        click.echo(f"(warning: {w})")
    if not n.meta.get("bible_proposed"):
        click.echo("(no proposed changes at this node)")


@bible.command()
@click.argument("names", nargs=-1)
@click.pass_context
def accept(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Apply the model's proposed changes at the node (all, or those for NAMES)."""
    library, story, node = _args(ctx)
    _saved(library.loom.accept_bible(story, node, list(names) or None))


def conflict_line(c: dict[str, Any]) -> str:
    """One conflict: its kind, the entry, the sentence quoted, and what the canon says."""
    how = ", ".join(x for x in (c.get("kind"), c.get("severity"), None if c.get("certain", True) else "uncertain") if x)
    by = "" if c.get("by", "rules") == "rules" else f" (by {c['by']})"
    return (click.style(f"continuity ({how}){by}, {c['entry']}: ", fg="yellow" if not c.get("certain", True) else "red",
                        bold=True) + f"\u201c{c['sentence']}\u201d — the canon says: {c['canon']}")


@bible.command("check")
@click.argument("target", required=False, metavar="[NODE]")
@click.option("--path", "whole", is_flag=True,
              help="With NODE: every paragraph on the path to NODE, not NODE's alone.")
@click.pass_context
def check_cmd(ctx: click.Context, target: str | None, whole: bool) -> None:
    """Check paragraphs against the canon again: NODE's paragraph, or (without NODE, or with --path) every
    paragraph on the path, each against the canon at its own node. Prints each conflict with its sentence;
    writes nothing (stop it at any time)."""
    from .. import bible as canon
    from ..continuity import Checker
    from ..loom.canon import on_series
    from . import progress

    library, story, node = _args(ctx)
    loom = library.loom
    last = loom.node(story, target or node)
    whole = whole or target is None
    # a long story is read in parts, so memory stays bounded however deep the path is
    batches = loom.path_batches(story, last.id) if whole else iter([[last]])
    found = checked = 0
    meter = progress.bar(last.depth + 1 if whole else 1, "node", "checking")
    series = loom.series.of(story) if whole else None
    base = {e.key: e for e in loom.series.canon(series)} if series else canon.EMPTY  # a member starts from it
    current = base if whole else {e.key: e for e in loom.bible(story, last.id)}
    checker: Checker | None = None
    try:
        for batch in batches:
            for n in batch:
                meter.update(1)
                if whole and (changes := canon.changes_of(n.meta)):  # its changes on its parent's canon
                    current = on_series(current, changes) if base else canon.apply(current, changes)
                if not n.paragraph.strip():
                    continue
                if checker is None or checker.bible is not current:  # the canon changes at a few nodes only
                    checker = Checker(current)
                conflicts = checker.check(n.paragraph)
                checked += 1
                for c in conflicts:
                    found += 1
                    click.echo(f"node {n.id} (depth {n.depth}): " + conflict_line(c.to_dict()))
    except KeyboardInterrupt:
        meter.close()
        click.echo(f"\ninterrupted after {checked} paragraph(s), {found} conflict(s); a check writes nothing",
                   err=True)
        ctx.exit(130)
    finally:
        meter.close()
    click.echo(f"{checked} paragraph(s) checked, {found} conflict(s)" if checked else "(no paragraph to check)")


def show_conflicts(node: Node, err: bool = True) -> None:
    """After a paragraph (and in ``memory``): what in it contradicts the canon, and the command that writes it
    again told so."""
    for c in node.meta.get("redrafted", []):
        click.echo(f"(a first draft contradicted {c['entry']}: {c['canon']}; it was written again)", err=err)
    conflicts = node.meta.get("conflicts", [])
    for c in conflicts:
        click.echo(conflict_line(c), err=err)
    if conflicts:
        click.echo(f"(to write it again told what it contradicted: `recurrentgpt regenerate {node.story_id} {node.id} "
                   f"--fix-conflicts`; to change the canon instead: `recurrentgpt bible {node.story_id} edit NAME …`)",
                   err=err)
    proposed = node.meta.get("bible_proposed")
    if proposed:
        click.echo(f"(the model proposes {len(proposed)} bible change(s): `recurrentgpt bible "
                   f"{node.story_id} proposed`, then `accept`)", err=True)
    for w in node.meta.get("bible_warnings", []):
        click.echo(f"(bible: {w})", err=True)



@bible.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--kind", "-k", type=click.Choice(KINDS), default="character", show_default=True,
              help="The kind of an entry whose file does not say (NovelAI categories and our exports do).")
@click.option("--dry-run", is_flag=True, help="Only print what would be imported.")
@click.pass_context
def import_lorebook(ctx: click.Context, file: str, kind: str, dry_run: bool) -> None:
    """Import a lorebook: SillyTavern World Info JSON, a character card (V1/V2/V3 JSON or PNG) or a
    NovelAI .lorebook. Keys become aliases, constant entries pinned, higher order first; an entry already
    in the bible is updated. All of it is saved as one new version of the node, or nothing is."""
    from .. import bible as canon

    library, story, node = _args(ctx)
    current = {canon.key(e.name): e for e in library.loom.bible(story, node)}
    changes = lorebook_changes(file, current, kind, dry_run, "the bible")
    if changes:
        _saved(library.loom.change_bible(story, changes, node))


def lorebook_changes(file: str, current: dict, kind: str, dry_run: bool, into: str) -> list:
    """The changes a lorebook file makes to ``current`` (key -> entry), its summary printed; none on a dry run.
    A file with nothing to import is an ``InputError``."""
    from .. import lorebooks
    from ..errors import InputError
    from ..importing import read_file

    book = lorebooks.parse(read_file(file, "the lorebook", lorebooks.MAX_LOREBOOK_BYTES), file)
    plan = lorebooks.plan_import(book, current, default_kind=kind)
    for line in plan.summary(book):
        click.echo(line)
    if not plan.changes:
        raise InputError(f"nothing in {file} can be imported into {into}")
    if dry_run:
        click.echo("(dry run: nothing was saved)")
        return []
    return plan.changes


@bible.command("export")
@click.option("--format", "-f", "fmt", type=click.Choice(("st", "card", "novelai")), default="st", show_default=True,
              help="st: SillyTavern World Info JSON; card: a V3 character card (PNG when --out ends in .png); "
                   "novelai: a NovelAI .lorebook.")
@click.option("--name", "character", help="card: the entry the card is of (default: a card for the story "
                                          "holding every entry).")
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Write to this file ('-' for stdout).")
@click.pass_context
def export_lorebook(ctx: click.Context, fmt: str, character: str | None, out: str | None) -> None:
    """Export the bible as of the node as a lorebook (default file name: from the title, in this folder)."""
    from pathlib import Path

    from .. import lorebooks
    from ..export import safe_filename
    from .app import write_atomically

    library, story, node = _args(ctx)
    info = library.loom.story(story)
    png = bool(out and out.lower().endswith(".png"))
    data = lorebooks.export_bytes(fmt, library.loom.bible(info.id, node), story_title=info.title,
                                  story_summary=info.premise or info.topic, character=character or "", png=png)
    if out == "-":
        click.get_binary_stream("stdout").write(data)
        return
    extension = {"st": "json", "card": "card.json", "novelai": "lorebook"}[fmt]
    target = Path(out) if out else Path(safe_filename(f"{info.title}-bible", extension))
    write_atomically(target, data)
    click.echo(f"wrote {target.resolve()}")
