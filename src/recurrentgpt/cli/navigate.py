"""Loom commands: look at the tree and move around it."""

from __future__ import annotations

import difflib
import textwrap

import click

from ..errors import InputError
from ..library import Library
from ..treeview import render_tree, version_note, version_notes
from .app import cli, pass_library, show_kept, show_plans, stream_to_stdout, warn_retry


@cli.command()
@click.argument("story")
@click.option("--node", "-n", default="head", show_default=True, help="Show the path to this node.")
@click.option("--plans/--no-plans", default=True, help="Also show the candidate plans at the end.")
@pass_library
def show(library: Library, story: str, node: str, plans: bool) -> None:
    """Print the story along the path to a node (default: the head)."""
    info = library.loom.story(story)
    path = library.loom.path(info.id, node)
    click.echo(f"# {info.title}   (story {info.id}, {info.genre}, {len(path)} paragraphs)\n")
    before = None  # the edit a run of reattached paragraphs was written before
    for n in path:
        if n.meta.get("chapter_end"):
            click.echo(f"## Chapter {n.meta.get('chapter', '?')}\n")
        if n.meta.get("before_edit") and n.meta["before_edit"] != before:
            click.echo(f"(the paragraphs from here were written before the edit of node {n.meta['before_edit']} "
                       "above them, and kept as they were)\n")
        before = n.meta.get("before_edit")
        click.echo(n.paragraph + "\n")
        original = n.meta.get("edited_from") if n.kind == "edit" else None
        note = version_note(n, library.loom.node(info.id, original)) if original else ""
        if note:
            click.echo(click.style(f"({note} at node {n.id}, a new version of {original})", dim=True) + "\n")
    if plans:
        click.echo("Candidate plans:")
        show_plans(path[-1])


@cli.command()
@click.argument("story")
@click.option("--node", "-n", default="head", show_default=True)
@click.option("--plan", "-p", "plan", help="Show what the long-term memory recalls for this plan (default: plan 1).")
@click.option("--prompt", "show_prompt", is_flag=True,
              help="Show instead exactly what the model was asked at this node, and what it answered: every call.")
@click.option("--call", "call_name", help="With --prompt: only this call (a name --prompt lists, or its start: "
                                         "step, simulator, chapter end, forget, checker, bible, rejected draft 1 …).")
@click.option("--pin", "pin", multiple=True,
              help="Pin a sentence of the short-term memory: neither the model nor an overflow drops it (repeat "
                   "for several; a new version of the node).")
@click.option("--unpin", "unpin", multiple=True, help="Unpin a sentence (repeat for several).")
@pass_library
def memory(library: Library, story: str, node: str, plan: str | None, show_prompt: bool, call_name: str | None,
           pin: tuple[str, ...], unpin: tuple[str, ...]) -> None:
    """Show the recurrent state at a node: outline, short-term memory (pinned sentences), rationale, plans and
    recalled paragraphs; --prompt shows every model call that shaped it; --pin/--unpin pin memory sentences."""
    loom = library.loom
    info = loom.story(story)
    current = loom.node(info.id, node)
    if pin and unpin:
        raise InputError("pin or unpin, not both at once")
    if pin or unpin:
        current = loom.pin_memory(info.id, list(pin or unpin), node=current.id, unpin=bool(unpin))
        count = len(pin or unpin)
        click.echo(f"{'pinned' if pin else 'unpinned'} {count} sentence{'s' if count != 1 else ''}: "
                   f"saved as {current.id}; head is now {current.id}\n")
    if call_name and not show_prompt:
        raise InputError("--call chooses among the calls --prompt shows: give --prompt too")
    if show_prompt:
        calls = current.calls()
        if not calls:
            source = current.meta.get("edited_from") if current.paragraph else None
            hint = (f"; its paragraph's calls are on the node it is a version of: `memory -n {source} --prompt`"
                    if source and loom.node(info.id, source).paragraph == current.paragraph else "")
            raise InputError(f"node {current.id} has no recorded prompt (written by a person, or by an older version)"
                             + hint)
        if call_name:
            wanted = " ".join(call_name.lower().split())
            chosen = [c for c in calls if c[0] == wanted] or [c for c in calls if c[0].startswith(wanted)]
            if not chosen:
                raise InputError(f"node {current.id} has no call {call_name!r} "
                                 f"(it has: {', '.join(n for n, _ in calls)})")
            calls = chosen
        else:
            click.echo(f"Node {current.id}: {len(calls)} call{'s' if len(calls) != 1 else ''} "
                       f"({', '.join(n for n, _ in calls)})\n")
        for name, trace in calls:
            click.echo(f"##### {name}")
            if trace.get("warning"):
                click.echo(f"(kept with a warning: {trace['warning']})")
            if trace.get("history"):
                click.echo(f"(continues the same conversation: {len(trace['history'])} earlier turn"
                           f"{'s' if len(trace['history']) != 1 else ''})")
            click.echo(f"=== system\n{trace.get('system', '')}\n=== prompt\n{trace['prompt']}\n"
                       f"=== answer\n{trace.get('answer', '')}\n")
        return
    state = loom.state(info.id, current.id)
    click.echo(f"Node {current.id} (depth {current.depth}, {current.kind}, chapter {state.chapter})\n")
    click.echo(f"Arc of the book:\n  {state.outline or '(none)'}\n")
    if state.beats:
        click.echo(f"Chapter {state.chapter} covers:\n  {state.beats}\n")
    if state.ending:
        click.echo(f"Chapter {state.chapter} ends here. In brief:\n  {state.ending['summary']}\n"
                   f"Chapter {state.chapter + 1} will cover:\n  {state.ending['beats']}\n")
    elif current.meta.get("chapter_proposal"):
        reason = current.meta["chapter_proposal"].get("reason") or "no reason given"
        click.echo(f"The model proposes ending chapter {state.chapter} here ({reason}): `end-chapter STORY` does.\n")
    click.echo(f"Plan that produced it:\n  {current.plan or '(none)'}\n")
    if current.synopsis:
        synopsis = current.synopsis
    elif current.meta.get("synopsis_warning"):
        synopsis = f"(none: {current.meta['synopsis_warning']}; `synopses STORY` tries again)"
    else:
        synopsis = "(none yet: `synopses STORY` writes it)"
    click.echo(f"Synopsis (indexed in the long-term memory):\n  {synopsis}\n")
    click.echo(f"Short-term memory:\n  {current.short_memory or '(empty)'}\n")
    if current.meta.get("pinned"):
        click.echo("Pinned (kept whatever the model answers):\n"
                   + "".join(f"  * {s}\n" for s in current.meta["pinned"]))
    kept = current.meta.get("memory_kept")
    if kept is not None and kept < 0.3:
        click.echo(f"  (this update kept only {kept:.0%} of the previous memory's words: it was rewritten, "
                   "not updated)\n")
    if current.rationale:
        click.echo(f"Rationale of the last update:\n{textwrap.indent(current.rationale, '  ')}\n")
    if current.meta.get("conflicts"):
        from .bible import show_conflicts

        click.echo("Continuity (what this paragraph contradicts in the story bible):")
        show_conflicts(current, err=False)
        click.echo("")
    click.echo("Candidate plans:")
    show_plans(current)
    query = plan or (current.plans[0] if current.plans else "")
    if query:
        click.echo(f"\nLong-term memory recalled for {'your plan' if plan else 'plan 1'} (top {info.settings.top_k}):")
        for r in loom.recall(info.id, query, current.id):
            click.echo(f"  [{r.node_id[:8]} depth {r.depth} score {r.score}] {r.passage[:160]}")


@cli.command()
@click.argument("story")
@click.option("--node", "-n", default="head", show_default=True, help="The node whose outline to show or edit.")
@click.option("--arc", help="The book's new arc (a new version of the node; the steps after it follow it).")
@click.option("--beats", help="What the current chapter covers, new (likewise).")
@pass_library
def outline(library: Library, story: str, node: str, arc: str | None, beats: str | None) -> None:
    """Show the book's arc and the current chapter's beats, or edit them (--arc, --beats) as a new version of
    the node: the writer owns the outline, and later chapter ends revise it from there."""
    loom = library.loom
    info = loom.story(story)
    current = loom.node(info.id, node)
    if arc is not None or beats is not None:
        current = loom.edit_outline(info.id, node=current.id, outline=arc, beats=beats)
        click.echo(f"saved as {current.id}; head is now {current.id}\n")
    state = loom.state(info.id, current.id)
    click.echo(f"Arc of the book:\n  {state.outline or '(none)'}\n")
    click.echo(f"Chapter {state.chapter} ({state.paragraphs_in_chapter} paragraph"
               f"{'s' if state.paragraphs_in_chapter != 1 else ''} so far) covers:\n  {state.beats or '(none)'}")
    if state.ending:
        click.echo(f"\nChapter {state.chapter} ends here; chapter {state.chapter + 1} will cover:\n"
                   f"  {state.ending['beats']}")


@cli.command("end-chapter")
@click.argument("story")
@click.argument("node", default="head")
@pass_library
def end_chapter(library: Library, story: str, node: str) -> None:
    """End the chapter at NODE (default: the head): one call summarises it, revises the arc and plans the next
    chapter, stored as a new version of the node; the next step opens the new chapter."""
    click.echo("Ending the chapter…", err=True)
    ended = library.loom.end_chapter(story, node, on_retry=warn_retry)
    end = ended.meta["ends_chapter"]
    click.echo(f"Chapter {end['chapter']} ends at {ended.id} (head). In brief:\n  {end['summary']}\n\n"
               f"Chapter {end['chapter'] + 1} will cover:\n  {end['beats']}")


@cli.command()
@click.argument("story")
@click.option("--all", "show_all", is_flag=True, help="Show pruned branches too.")
@click.option("--fold", type=int, default=6, show_default=True, help="Fold unbranched runs longer than this.")
@pass_library
def tree(library: Library, story: str, show_all: bool, fold: int) -> None:
    """Show the story tree: ids, depth, first words, [bookmarks].

    Markers: * the head, | its line (the path the story reads), - a node on another branch,
    x a pruned node (with --all); "⋮ N more" folds a long unbranched run."""
    info = library.loom.story(story)
    rows = library.loom.tree(info.id)
    bookmarks = library.loom.bookmarks(info.id)
    notes = version_notes(rows, lambda node_id: library.loom.node(info.id, node_id))
    click.echo(render_tree(rows, info.head_id, bookmarks, fold=max(fold, 2), show_pruned=show_all, notes=notes))


@cli.command()
@click.argument("story")
@click.argument("node")
@pass_library
def checkout(library: Library, story: str, node: str) -> None:
    """Move the head to NODE: the next step continues from its exact state."""
    target = library.loom.checkout(story, node)
    click.echo(f"head is now {target.id} (depth {target.depth}): {target.paragraph[:80]}")


@cli.command()
@click.argument("story")
@pass_library
def undo(library: Library, story: str) -> None:
    """Step back one paragraph: the head moves to its parent; the undone paragraph stays as a branch
    (`checkout` brings it back)."""
    info = library.loom.story(story)
    undone = info.head_id
    target = library.loom.undo(info.id)
    click.echo(f"head is now {target.id} (depth {target.depth}); {undone} is kept as a branch")


@cli.command()
@click.argument("story")
@click.argument("name")
@click.argument("node", default="head")
@click.option("--delete", is_flag=True, help="Remove the bookmark.")
@pass_library
def bookmark(library: Library, story: str, name: str, node: str, delete: bool) -> None:
    """Name a node (default: the head), or --delete a name."""
    if delete:
        library.loom.remove_bookmark(story, name)
        click.echo(f"removed bookmark {name}")
    else:
        target = library.loom.bookmark(story, name, node)
        click.echo(f"{name} -> {target.id}")


@cli.command()
@click.argument("story")
@click.argument("node")
@click.option("--restore", is_flag=True, help="Bring a pruned branch back.")
@pass_library
def prune(library: Library, story: str, node: str, restore: bool) -> None:
    """Hide the branch starting at NODE (recoverable with --restore)."""
    target = library.loom.prune(story, node, restore=restore)
    click.echo(f"{'restored' if restore else 'pruned'} {target.id}")


@cli.command()
@click.argument("story")
@click.argument("node", default="head")
@click.option("-n", "count", type=click.IntRange(1, 16), default=1, show_default=True, help="How many alternatives.")
@click.option("--checkout", "move", is_flag=True, help="Move the head to the last alternative.")
@click.option("--fix-conflicts", is_flag=True,
              help="Tell the model what NODE's paragraph contradicted in the story bible.")
@pass_library
def regenerate(library: Library, story: str, node: str, count: int, move: bool, fix_conflicts: bool) -> None:
    """Write alternatives to NODE (same parent, same plan), kept as siblings."""
    from .bible import show_conflicts

    for i in range(count):
        click.echo(click.style(f"alternative {i + 1}/{count}:", bold=True))
        [alt] = library.loom.regenerate(story, node, 1, on_text=stream_to_stdout, on_retry=warn_retry,
                                        fix_conflicts=fix_conflicts)
        show_kept([alt.paragraph])
        click.echo(f"\n(node {alt.id})\n")
        show_conflicts(alt)
    if move:
        library.loom.checkout(story, alt.id)
        click.echo(f"head is now {alt.id}")


@cli.command()
@click.argument("story")
@click.argument("node")
@click.option("--paragraph", help="The new paragraph text.")
@click.option("--paragraph-file", type=click.Path(dir_okay=False), help="Read the new paragraph from a file.")
@click.option("--memory", "short_memory", help="The new short-term memory.")
@click.option("--plan", "plans", multiple=True, help="A new candidate plan (repeat for several).")
@click.option("--replay", is_flag=True, help="Rewrite the steps below NODE from the edit, with their plans.")
@click.option("--reattach", is_flag=True, help="Keep the steps below NODE as they are, under the edit.")
@click.option("--refresh/--no-refresh", default=None,
              help="Rewrite the memory and plans for a new paragraph with one model call (default: yes, "
                   "unless you give --memory or --plan).")
@pass_library
def edit(library: Library, story: str, node: str, paragraph: str | None, paragraph_file: str | None,
         short_memory: str | None, plans: tuple[str, ...], replay: bool, reattach: bool, refresh: bool | None) -> None:
    """Edit a paragraph, its memory or its plans: saved as a new sibling, history is kept."""
    if paragraph_file:
        from .app import read_file_arg

        paragraph = read_file_arg(paragraph_file, "paragraph file").decode("utf-8", "replace")
    depth = library.loom.node(story, node).depth  # the replay rewrites the nodes below this depth
    new = library.loom.edit(story, node, paragraph=paragraph, short_memory=short_memory,
                            plans=list(plans) if plans else None, replay=replay, reattach=reattach, refresh=refresh,
                            on_text=stream_to_stdout if replay else None, on_retry=warn_retry)
    click.echo(f"\nsaved as {new.id}; head is now {new.id}")
    for rewritten in library.loom.path(story, new.id)[depth + 1:] if replay else []:
        for dropped in rewritten.meta.get("replay_dropped", []):
            click.echo(f"warning: your bible change was not kept at node {rewritten.id} (it no longer fits the "
                       f"rewritten story): {dropped}", err=True)


@cli.command()
@click.argument("story")
@click.argument("a")
@click.argument("b")
@pass_library
def diff(library: Library, story: str, a: str, b: str) -> None:
    """Word diff of two paragraphs (e.g. siblings): [-removed-] {+added+}."""
    info = library.loom.story(story)  # a story-id prefix works here as everywhere
    first, second = library.loom.node(info.id, a), library.loom.node(info.id, b)
    if first.id == second.id:
        raise InputError("both references name the same node")
    if " ".join(first.paragraph.split()) == " ".join(second.paragraph.split()):
        click.echo(f"(the paragraphs of {first.id} and {second.id} are identical)")
        return
    click.echo(word_diff(first.paragraph, second.paragraph))


def word_diff(a: str, b: str) -> str:
    wa, wb = a.split(), b.split()
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=wa, b=wb, autojunk=False).get_opcodes():
        if op == "equal":
            out.extend(wa[i1:i2])
        if op in ("delete", "replace"):
            out.append("[-" + " ".join(wa[i1:i2]) + "-]")
        if op in ("insert", "replace"):
            out.append("{+" + " ".join(wb[j1:j2]) + "+}")
    return " ".join(out)
