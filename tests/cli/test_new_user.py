"""What a new user tripped over (issue 15), each fixed and checked through the command line."""

from __future__ import annotations

import pytest

from recurrentgpt.cli import main
from recurrentgpt.embeddings import embedder_name, get_embedder

FAST = ["--model", "scripted", "--embedder", "hash"]


def run(capsys, *args):
    code = main([*FAST, *args])
    out, err = capsys.readouterr()
    return code, out, err


def new_story(capsys, *extra):
    code, out, _ = run(capsys, "new", "fantasy", "a dragon who fears fire", "--opening-paragraphs", "2", *extra)
    assert code == 0
    return out.split("(story ")[1].split(")")[0]


def test_diff_takes_a_story_id_prefix(capsys):
    sid = new_story(capsys)
    assert run(capsys, "step", sid, "--plan", "1")[0] == 0
    assert run(capsys, "regenerate", sid)[0] == 0
    code, out, _ = run(capsys, "tree", sid)
    siblings = [line.split()[1] for line in out.splitlines() if line.split()[0] in ("*", "-")]
    assert len(siblings) == 2
    code, out, err = run(capsys, "diff", sid[:5], *siblings)  # before: "no node" for a prefix
    assert code == 0 and out.strip(), err


@pytest.mark.parametrize(
    "args", [["write"], ["write", "x", "--bogus"], ["nosuchcommand"], ["export", "x", "-f", "pdf"]]
)
def test_usage_errors_are_one_line(capsys, args):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "--help" in err


def test_no_arguments_still_shows_the_help(capsys):
    assert main([]) in (0, 2)
    out, err = capsys.readouterr()
    assert "Usage" in out + err and "Commands" in out + err


def test_export_says_the_absolute_path_it_wrote(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sid = new_story(capsys)
    code, out, _ = run(capsys, "export", sid, "-f", "md")
    written = out.split("wrote ", 1)[1].strip()
    assert code == 0 and written.startswith(str(tmp_path)) and (tmp_path / written).exists()


def test_demo_says_where_it_wrote_and_how_to_repeat_it(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "demo", "-n", "1")
    assert code == 0, err
    assert "seed " in err and "--seed" in err
    written = out.split("paragraphs to ", 1)[1].split(" (story")[0]
    assert written.startswith(str(tmp_path)) and written.endswith(".md")
    assert str(tmp_path / "library.db") in out  # and where the story itself lives


def test_demo_seed_is_random_unless_given(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seeds = set()
    for _ in range(3):
        main([*FAST, "demo", "-n", "1", "-o", str(tmp_path / "d.md")])
        err = capsys.readouterr().err
        seeds.add(err.split("(seed ")[1].split(";")[0])
    assert len(seeds) > 1
    main([*FAST, "--seed", "42", "demo", "-n", "1", "-o", str(tmp_path / "d.md")])
    assert "(seed 42;" in capsys.readouterr().err


def test_new_streams_the_opening_as_it_is_written(capsys):
    code, out, err = run(capsys, "new", "fantasy", "a dragon", "--opening-paragraphs", "2")
    assert code == 0
    assert out.index("Paragraph") < out.index("(story ")  # the paragraphs came before the title line


def test_undo_steps_back_and_keeps_the_branch(capsys):
    sid = new_story(capsys)
    assert run(capsys, "step", sid, "--plan", "1")[0] == 0
    code, out, _ = run(capsys, "undo", sid[:6])
    assert code == 0 and "kept as a branch" in out
    code, _, err = run(capsys, "undo", sid)
    assert code == 2 and "nothing to undo" in err  # the opening cannot be undone
    code, out, _ = run(capsys, "tree", sid)
    assert out.count("- ") >= 1  # the undone paragraph is a branch off the head's line


def test_tree_markers_are_documented(capsys):
    assert main(["tree", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # click re-wraps the text
    assert "* the head" in out and "| its line" in out and "- a node on another branch" in out


def test_import_keeps_the_manuscripts_own_title(capsys, tmp_path):
    book = tmp_path / "book.md"
    book.write_text("# The Lantern \\*Keeper\\*\n\nFirst paragraph of the book, long enough.\n\n"
                    "Second paragraph of the book.\n")
    code, out, err = run(capsys, "import", str(book), "--genre", "mystery")
    assert code == 0, err
    assert "The Lantern *Keeper*" in out
    code, out, err = run(capsys, "import", str(book), "--genre", "mystery", "--title", "Mine")
    assert ": Mine (" in out


@pytest.mark.parametrize(
    "spec", ["hash", "hash-64", "st:some/folder/my-model", "minilm", "openai:text-embedding-3-small"]
)
def test_embedder_is_named_the_same_before_and_after_it_is_built(spec):
    assert embedder_name(spec) == get_embedder(spec, base_url="http://127.0.0.1:9/v1", api_key="x").name


def test_write_shows_progress_with_eta_only_on_a_terminal(capsys, monkeypatch):
    from recurrentgpt.cli import progress

    sid = new_story(capsys)
    code, _, err = run(capsys, "write", sid, "-n", "2")
    assert code == 0 and "2/2" not in err  # captured stderr is not a terminal: quiet
    monkeypatch.setattr(progress, "is_terminal", lambda: True)
    code, _, err = run(capsys, "write", sid, "-n", "2")
    meters = [line for line in err.splitlines() if "paragraph" in line and "/2 [" in line]
    assert code == 0 and [m.split("|")[-1].split()[0] for m in meters] == ["0/2", "1/2", "2/2"]
    assert "<" in meters[1]  # elapsed<remaining: the ETA


def test_batch_bar_on_a_terminal_lines_in_a_log(capsys, monkeypatch, tmp_path):
    from recurrentgpt.cli import progress

    premises = tmp_path / "p.jsonl"
    premises.write_text('{"genre": "fantasy", "topic": "a dragon"}\n{"genre": "noir", "topic": "a cat"}\n')
    code, _, err = run(capsys, "batch", str(premises), "--steps", "1", "--opening-paragraphs", "2")
    assert code == 0 and err.count("line ") == 2 and "\r" not in err  # a log: one line per story
    monkeypatch.setattr(progress, "is_terminal", lambda: True)
    (tmp_path / "p2.jsonl").write_text('{"genre": "horror", "topic": "a clock"}\n')
    code, _, err = run(capsys, "batch", str(tmp_path / "p2.jsonl"), "--steps", "1", "--opening-paragraphs", "2")
    assert code == 0 and "1/1" in err and "story" in err


@pytest.mark.parametrize("model, warned", [("smollm2", True), ("some/model.gguf", True), ("ollama:qwen2.5", False),
                                           ("scripted", False)])
def test_serve_with_workers_warns_about_an_embedded_model(capsys, monkeypatch, model, warned):
    import os

    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: started.append(kw.get("workers")))
    monkeypatch.setattr(os, "environ", dict(os.environ))  # serve exports its options for the workers
    code = main(["--model", model, "--embedder", "hash", "serve", "--workers", "2", "--port", "0"])
    err = capsys.readouterr().err
    assert code == 0 and started == [2]
    assert ("each of the 2 workers loads its own copy" in err) == warned


def test_an_exported_title_reads_back_literally_on_import():
    """The Markdown export escapes a title's punctuation (``export.escape_markdown``, ``&`` included); the
    manuscript import must undo every such escape. Seen failing with the import's old list of characters,
    which left ``\\&`` in "Tom \\& Jerry"."""
    from recurrentgpt.export import escape_markdown
    from recurrentgpt.importing import manuscript_title

    for title in ('The *Candle* [Keeper] #2 <of> "Ash" & Ember', "Tom & Jerry: one_two {three} (four)!"):
        assert manuscript_title(f"# {escape_markdown(title)}\n\nThe first paragraph.\n") == title
