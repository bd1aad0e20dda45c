"""Interactive fiction in the terminal ("AI as Contents"): the reader chooses what happens next."""

from __future__ import annotations

import click

from ..bible import Entry
from ..errors import InputError
from ..library import Library
from ..story import Node, Settings
from .app import BIBLE_CHOICE, cli, pass_library, stream_to_stdout, warn_retry

HELP = ("[1-3] choose · or type what you do · u undo · r recap · i what you carry and know · c end the chapter · "
        "q save and quit")


@cli.command()
@click.argument("story", required=False)
@click.option("--genre", default="fantasy", show_default=True, help="For a new story.")
@click.option("--topic", default="a traveller arrives at a city that appears only at night", show_default=True,
              help="For a new story.")
@click.option("--name", default="", help="Your name: the protagonist is you.")
@click.option("--tone", default="", help="e.g. cosy, eerie, witty.")
@click.option("--pace", default="", help="e.g. slow and descriptive, fast.")
@click.option("--avoid", default="", help="Content the story must avoid.")
@click.option("--person", type=click.Choice(["second", "third", "first"]), default="second", show_default=True)
@click.option("--passage-sentences", type=int, default=6, show_default=True)
@click.option("--bible", "bible_mode", type=BIBLE_CHOICE, default="auto", show_default=True,
              help="For a new story: after each turn the model records what you carry, have met and have learned "
                   "in the story bible, so later choices stay true to them (off: skip that call).")
@click.option("--auto", "auto_turns", type=click.IntRange(1, 1000), help="Let the simulator play N turns (demo).")
@pass_library
def play(library: Library, story: str | None, genre: str, topic: str, name: str, tone: str, pace: str, avoid: str,
         person: str, passage_sentences: int, bible_mode: str, auto_turns: int | None) -> None:
    """Play an interactive story: start a new one, or resume STORY where you left it."""
    loom = library.loom
    if story:
        info = loom.story(story)
        if info.mode != "fiction":
            raise InputError(f"story {info.id} is a writer's story; `play` resumes interactive fiction only")
        click.echo(f"# {info.title}\n")
        recap(loom.path(info.id)[-2:])
    else:
        profile = {k: v for k, v in dict(name=name, tone=tone, pace=pace, avoid=avoid).items() if v}
        settings = Settings(paragraph_sentences=passage_sentences, memory_sentences=10, memory_words=200,
                            plan_sentences=1, opening_paragraphs=1, person=person, bible=bible_mode)
        click.echo("Opening the story…", err=True)
        info = loom.new_story(genre, topic, mode="fiction", profile=profile, settings=settings, on_retry=warn_retry)
        click.echo(f"# {info.title}   (story {info.id}: resume with `recurrentgpt play {info.id}`)\n")
        recap(loom.path(info.id))
    if auto_turns:
        for _ in range(auto_turns):
            choice = loom.choose(info.id)
            click.echo(click.style(f"\n> {choice.plan}\n", bold=True))
            loom.step(info.id, choice.plan, on_text=stream_to_stdout, on_retry=warn_retry)
            click.echo()
        return
    while True:
        head = loom.node(info.id)
        click.echo()
        for i, action in enumerate(head.plans, 1):
            click.echo(f"  {i}. {action}")
        try:
            answer = click.prompt(HELP, prompt_suffix="\n> ", default="", show_default=False).strip()
        except click.Abort:  # end of input: everything is already saved
            click.echo("\nsaved.")
            return
        if answer in ("q", "quit"):
            click.echo(f"saved. Resume with: recurrentgpt play {info.id}")
            return
        if answer in ("u", "undo"):
            try:
                back = loom.undo(info.id)
            except InputError as e:
                click.echo(f"({e})")
                continue
            click.echo("(undone)\n")
            recap([back])
            continue
        if answer in ("r", "recap"):
            recap(loom.path(info.id))
            continue
        if answer in ("i", "inventory"):
            inventory(loom.bible(info.id))
            continue
        if answer == "c":  # a long adventure read as a book: its chapters are the export's
            try:
                ended = loom.end_chapter(info.id, on_retry=warn_retry)
            except InputError as e:  # (at the opening, or ended already): say so and ask again
                click.echo(f"({e})")
                continue
            end = ended.meta["ends_chapter"]["chapter"]
            click.echo(f"(chapter {end} ends here; what you do next opens chapter {end + 1})")
            continue
        if not answer:
            continue
        action: str | int = int(answer) - 1 if answer.isdigit() and 1 <= int(answer) <= len(head.plans) else answer
        click.echo()
        loom.step(info.id, action, on_text=stream_to_stdout, on_retry=warn_retry)
        click.echo()


def inventory(entries: list[Entry]) -> None:
    """What the story bible says the reader carries, has met and has learned (and the rest of the canon)."""
    if not entries:
        click.echo("(nothing recorded yet)")
    for e in entries:
        status = f" [{e.status}]" if e.status else ""
        click.echo(f"  {e.kind:<9} {e.name}{status}{': ' + ' '.join(e.facts) if e.facts else ''}")


def recap(nodes: list[Node]) -> None:
    for node in nodes:
        if node.kind != "opening" and node.plan:
            click.echo(click.style(f"> {node.plan}\n", bold=True))
        click.echo(node.paragraph + "\n")
