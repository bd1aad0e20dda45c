"""`recurrentgpt bible STORY …`: the story bible (canon) at a node: list, show, add, edit, pin, remove,
history, accept. Every change is a new version of the node, like `edit`."""

from __future__ import annotations

from typing import Any

import click

from ..story import Node
from ..library import Library
from .app import cli

KINDS = ("character", "place", "object", "group", "rule", "thread", "event")


@cli.group(invoke_without_command=True)
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


def _saved(node: Node) -> None:
    click.echo(f"(saved as node {node.id}, a new version of node {node.meta.get('edited_from')}; the head is there now)")


@bible.command("list")
@click.pass_context
def list_entries(ctx: click.Context) -> None:
    """Every entry, one line each."""
    library, story, node = _args(ctx)
    entries = library.loom.bible(story, node)
    if not entries:
        click.echo("(the bible is empty: add an entry with `recurrentgpt bible STORY add NAME --kind … --fact …`)")
    for e in entries:
        pin = "*" if e.pinned else " "
        status = f" [{e.status}]" if e.status else ""
        aka = f" (also {', '.join(e.aliases)})" if e.aliases else ""
        click.echo(f"{pin} {e.kind:<9} {e.name}{aka}{status}")
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
@click.argument("name")
@click.option("--kind", "-k", type=click.Choice(KINDS), default="character", show_default=True)
@click.option("--alias", "-a", "aliases", multiple=True, help="Another name it goes by (repeat).")
@click.option("--fact", "-f", "facts", multiple=True, help="A short fact (repeat).")
@click.option("--status", "-s", help="e.g. alive, dead, missing, held by Mara, open, resolved.")
@click.option("--pin", is_flag=True, help="Show it to every step, named or not.")
@click.pass_context
def add(ctx: click.Context, name: str, kind: str, aliases: tuple[str, ...], facts: tuple[str, ...],
        status: str | None, pin: bool) -> None:
    """Add an entry."""
    library, story, node = _args(ctx)
    _saved(library.loom.change_bible(story, [_change("add", name, kind=kind, aliases=aliases, facts=facts,
                                                 status=status, pinned=pin)], node))


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
    _saved(library.loom.change_bible(story, [change], node))


@bible.command()
@click.argument("name")
@click.option("--off", is_flag=True, help="Unpin it.")
@click.pass_context
def pin(ctx: click.Context, name: str, off: bool) -> None:
    """Show an entry to every step (or stop, with --off)."""
    library, story, node = _args(ctx)
    entry = library.loom.bible_entry(story, name, node)
    _saved(library.loom.change_bible(story, [_change("update", entry.name, pinned=not off)], node))


@bible.command()
@click.argument("name")
@click.pass_context
def remove(ctx: click.Context, name: str) -> None:
    """Retire an entry (the nodes before this one keep it: see `history`)."""
    library, story, node = _args(ctx)
    entry = library.loom.bible_entry(story, name, node)
    _saved(library.loom.change_bible(story, [_change("remove", entry.name)], node))


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
    from ..continuity import Checker
    from . import progress

    library, story, node = _args(ctx)
    loom = library.loom
    ref = target or node
    nodes = loom.path(story, ref) if (whole or target is None) else [loom.node(story, ref)]
    nodes = [n for n in nodes if n.paragraph.strip()]
    found = checked = 0
    meter = progress.bar(len(nodes), "paragraph", "checking")
    checker: Checker | None = None
    try:
        for n in nodes:
            entries = loom.bible(story, n.id)
            bible = {e.key: e for e in entries}
            if checker is None or checker.bible != bible:  # the canon changes at a few nodes only
                checker = Checker(bible)
            conflicts = checker.check(n.paragraph)
            checked += 1
            meter.update(1)
            for c in conflicts:
                found += 1
                meter.clear() if hasattr(meter, "clear") else None
                click.echo(f"node {n.id} (depth {n.depth}): " + conflict_line(c.to_dict()))
    finally:
        meter.close()
    click.echo(f"{checked} paragraph(s) checked, {found} conflict(s)" if checked else "(no paragraph to check)")


def show_conflicts(node: Node) -> None:
    """After a paragraph: what in it contradicts the canon."""
    for c in node.meta.get("redrafted", []):
        click.echo(f"(a first draft contradicted {c['entry']}: {c['canon']}; it was written again)", err=True)
    for c in node.meta.get("conflicts", []):
        click.echo(conflict_line(c), err=True)
    proposed = node.meta.get("bible_proposed")
    if proposed:
        click.echo(f"(the model proposes {len(proposed)} bible change(s): `recurrentgpt bible "
                   f"{node.story_id} proposed`, then `accept`)", err=True)
    for w in node.meta.get("bible_warnings", []):
        click.echo(f"(bible: {w})", err=True)

