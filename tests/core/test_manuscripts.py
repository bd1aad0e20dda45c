"""Manuscripts in and out: DOCX, EPUB and ODT read back into chapters, paragraphs and italics; the DOCX
title page's contact block, surname and counts; control characters kept out of both books; a bad file
is one error and changes nothing."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import pytest

from recurrentgpt import Loom, books
from recurrentgpt.errors import InputError
from recurrentgpt.export import one_paragraph, sections
from recurrentgpt.importing import read_manuscript
from recurrentgpt.story import Node, Settings, StoryInfo
from tests.conftest import SMALL

PARAGRAPHS = [
    "She was *very* tired, and the tower was *far*.",
    "Ada said <hi> & left — “quoted”, and a tab\there.",
    "The **bell** rang; ***nobody*** came.",
    "Chapter two opens with an *italic phrase in the middle* of it.",
    "A quiet paragraph.",
    "The fire *spoke*: “Not yet.”",
    "Last chapter, *first* line.",
    "The end of it all.",
]
FIRE = {"number": 2, "title": "The Fire"}
CHAPTERS = [1, 1, 1, FIRE, FIRE, FIRE, 3, 3]


@pytest.fixture
def book(tmp_path, model, embedder):
    """A story of 8 paragraphs with emphasis, in three chapters, with a scene break in chapter 2."""
    loom = Loom.open(tmp_path / "books.db", model, embedder, seed=3)
    info = loom.new_story("fantasy", "a dragon who fears fire", settings=SMALL)
    for _ in range(6):
        loom.step(info.id, 0)
    tree = json.loads(loom.export(info.id, "tree"))
    by_id = {n["id"]: n for n in tree["nodes"]}
    for i, node in enumerate(loom.path(info.id)):
        meta = by_id[node.id]["meta"]
        meta["chapter"] = CHAPTERS[i]
        by_id[node.id]["paragraph"] = PARAGRAPHS[i]
    by_id[loom.path(info.id)[5].id]["meta"]["scene_break"] = True
    tree["story"]["title"] = "The Candle Keeper"
    imported = loom.import_tree(json.dumps(tree).encode())
    yield loom, imported
    loom.close()


def expected(loom, info):
    return [(s.title, s.blocks) for s in sections(loom.path(info.id))]


@pytest.mark.parametrize("fmt", ["docx", "epub"])
def test_our_own_book_reads_back_with_its_chapters_paragraphs_and_italics(book, fmt):
    loom, info = book
    data = loom.export_bytes(info.id, fmt, author="Ursula K. Le Guin")
    manuscript = read_manuscript(data, f"book.{fmt}")
    assert manuscript.source == fmt
    assert manuscript.title == "The Candle Keeper" and manuscript.author == "Ursula K. Le Guin"
    assert [(c.title, c.blocks) for c in manuscript.chapters] == expected(loom, info)
    assert [c.title for c in manuscript.chapters] == ["Chapter 1", "Chapter 2: The Fire", "Chapter 3"]
    assert manuscript.chapters[1].blocks[2] is None  # the scene break
    assert manuscript.paragraphs == [one_paragraph(p) for p in PARAGRAPHS]


def _odt(content_body: str, *, title: str = "", creator: str = "", extra: dict[str, bytes] | None = None) -> bytes:
    """An ODT written from the OpenDocument specification: mimetype first and stored, manifest, content,
    styles and meta."""
    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" '
          'xmlns:dc="http://purl.org/dc/elements/1.1/" '
          'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0"')
    content = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document-content {ns} office:version="1.3">
<office:automatic-styles>
  <style:style style:name="T1" style:family="text"><style:text-properties fo:font-style="italic"/></style:style>
  <style:style style:name="T2" style:family="text"><style:text-properties fo:font-weight="bold"/></style:style>
</office:automatic-styles>
<office:body><office:text>{content_body}</office:text></office:body>
</office:document-content>"""
    styles = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document-styles {ns}><office:styles>
  <style:style style:name="Emphasis" style:family="text"><style:text-properties fo:font-style="italic"/></style:style>
</office:styles></office:document-styles>"""
    meta = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document-meta {ns}><office:meta><dc:title>{title}</dc:title>
<meta:initial-creator>{creator}</meta:initial-creator></office:meta></office:document-meta>"""
    manifest = """<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">
 <manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
</manifest:manifest>"""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        z.writestr("META-INF/manifest.xml", manifest)
        z.writestr("content.xml", content)
        z.writestr("styles.xml", styles)
        z.writestr("meta.xml", meta)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buffer.getvalue()


ODT_BODY = """
<text:p text:style-name="Title">The Salt Road</text:p>
<text:h text:outline-level="1">Chapter One</text:h>
<text:p>The road ran <text:span text:style-name="T1">white</text:span> under the moon.</text:p>
<text:p>Nell <text:span text:style-name="Emphasis">never</text:span> looked<text:s text:c="2"/>back;<text:tab/>she \
<text:span text:style-name="T2">ran</text:span>.</text:p>
<text:p>* * *</text:p>
<text:p>Morning came.<text:note><text:note-body><text:p>a footnote</text:p></text:note-body></text:note></text:p>
<text:h text:outline-level="1">Chapter Two: <text:span text:style-name="T1">Salt</text:span></text:h>
<text:list><text:list-item><text:p>A listed line.</text:p></text:list-item></text:list>
<text:section text:name="s"><text:p>The last line.</text:p></text:section>
"""


def test_an_odt_gives_its_chapters_italics_title_and_author():
    manuscript = read_manuscript(_odt(ODT_BODY, title="The Salt Road", creator="Nell Farrow"), "road.odt")
    assert manuscript.source == "odt" and manuscript.title == "The Salt Road" and manuscript.author == "Nell Farrow"
    assert [(c.title, c.blocks) for c in manuscript.chapters] == [
        ("Chapter One", ["The road ran *white* under the moon.", "Nell *never* looked  back;\tshe **ran**.", None,
                         "Morning came."]),
        ("Chapter Two: Salt", ["A listed line.", "The last line."]),
    ]


def test_markdown_and_text_headings_start_chapters():
    text = ("# The Salt Road\n\nA prologue line.\n\n## Chapter 1\n\nThe road ran *white*.\n\n* * *\n\n"
            "After the break.\n\nChapter 2: Salt\n\nThe last line.\n")
    manuscript = read_manuscript(text.encode(), "road.md")
    assert manuscript.title == "The Salt Road"
    assert [(c.title, c.blocks) for c in manuscript.chapters] == [
        ("", ["A prologue line."]), ("Chapter 1", ["The road ran *white*.", None, "After the break."]),
        ("Chapter 2: Salt", ["The last line."])]
    plain = read_manuscript(b"One paragraph.\n\nAnother one.\n", "plain.txt")
    assert not plain.has_chapters and plain.paragraphs == ["One paragraph.", "Another one."]


# -- bad files: one error each, and nothing written ---------------------------------------------------


def _docx_bytes(book) -> bytes:
    loom, info = book
    return loom.export_bytes(info.id, "docx")


def _rezip(data: bytes, change) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = change(item.filename, src.read(item.filename))
            if body is not None:
                dst.writestr(item, body)
    return out.getvalue()


def test_damaged_encrypted_and_foreign_files_are_one_clear_error(book):
    docx_bytes = _docx_bytes(book)
    loom, info = book
    epub_bytes = loom.export_bytes(info.id, "epub")
    encryption = (b'<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
                  b'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
                  b'<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
                  b'<enc:CipherData><enc:CipherReference URI="EPUB/chapter-001.xhtml"/></enc:CipherData>'
                  b'</enc:EncryptedData></encryption>')
    with zipfile.ZipFile(io.BytesIO(epub_bytes)) as z:
        drm = io.BytesIO()
        with zipfile.ZipFile(drm, "w") as out:
            for item in z.infolist():
                out.writestr(item, z.read(item.filename))
            out.writestr("META-INF/encryption.xml", encryption)
    manifest_encrypted = _rezip(_odt(ODT_BODY), lambda name, body: body.replace(
        b'manifest:media-type="text/xml"/>',
        b'manifest:media-type="text/xml"><manifest:encryption-data manifest:checksum-type="SHA1" '
        b'manifest:checksum="x"/></manifest:file-entry>') if name == "META-INF/manifest.xml" else body)
    cases = {
        "damaged": (docx_bytes[: len(docx_bytes) // 2], "damaged"),
        "no document part": (_rezip(docx_bytes, lambda n, b: None if n == "word/document.xml" else b), "damaged"),
        "bad XML": (_rezip(docx_bytes, lambda n, b: b[:200] if n == "word/document.xml" else b), "damaged"),
        "Office encryption": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "password"),
        "EPUB DRM": (drm.getvalue(), "DRM"),
        "ODT password": (manifest_encrypted, "password"),
        "PDF": (b"%PDF-1.7\n...", "PDF"),
        "zip": (_zip({"a.txt": b"x"}), "not a DOCX, EPUB or ODT"),
        "no text": (_odt("<text:p> </text:p>"), "no paragraphs"),
    }
    for what, (data, message) in cases.items():
        with pytest.raises(InputError, match=message) as caught:
            read_manuscript(data, "the file")
        assert "\n" not in str(caught.value), what


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def test_a_zip_bomb_is_refused_by_what_it_unpacks_to(monkeypatch):
    from recurrentgpt import importing

    monkeypatch.setattr(importing, "MAX_UNPACKED_BYTES", 1_000_000)
    body = ODT_BODY + "<text:p>" + "a" * 2_000_000 + "</text:p>"
    with pytest.raises(InputError, match="unpacks to 2 MB; the limit is 1 MB"):
        read_manuscript(_odt(body), "bomb.odt")


def _library(tmp_path):
    from recurrentgpt import HashingEmbedder, ScriptedModel

    loom = Loom.open(tmp_path / "lib.db", ScriptedModel(), HashingEmbedder())
    info = loom.new_story("fantasy", "a dragon", settings=SMALL)
    before = [(s.id, len(loom.tree(s.id))) for s in loom.stories()]
    loom.close()
    return info, before


def _after(tmp_path):
    from recurrentgpt import HashingEmbedder, ScriptedModel

    loom = Loom.open(tmp_path / "lib.db", ScriptedModel(), HashingEmbedder())
    try:
        return [(s.id, len(loom.tree(s.id))) for s in loom.stories()]
    finally:
        loom.close()


# -- DOCX export: contact block, italics, surname, counts ------------------------------------------------


def _info(title="The Candle Keeper", language="en"):
    return StoryInfo(id="s", title=title, genre="fantasy", topic="t", premise="", outline="", mode="writer",
                     settings=Settings(language=language), profile={}, head_id=None, created_at=0, updated_at=0)


def _node(i, text, **meta):
    return Node(id=str(i), story_id="s", parent_id=None, depth=i, kind="step", plan="", paragraph=text,
                rationale="", short_memory="", plans=(), meta=meta)


def _docx(data):
    import docx

    return docx.Document(io.BytesIO(data))


def test_docx_title_page_has_the_contact_block_and_the_header_the_surname():
    contact = books.Contact(address="12 Harbour Lane; Saltmarsh, SM1 2AB", phone="+44 20 7946 0000",
                            email="ursula@example.org")
    document = _docx(books.to_docx(_info(), [_node(0, "One *two* three.")], author="Ursula K. Le Guin",
                                   contact=contact))
    lines = [p.text for p in document.paragraphs[:5]]
    assert lines == ["Ursula K. Le Guin\tabout 100 words", "12 Harbour Lane", "Saltmarsh, SM1 2AB",
                     "+44 20 7946 0000", "ursula@example.org"]
    assert document.sections[0].header.paragraphs[0].text == "Le Guin / The Candle Keeper / "
    with_surname = _docx(books.to_docx(_info(), [_node(0, "x")], author="Ursula K. Le Guin",
                                       contact=books.Contact(surname="LeGuin", legal_name="U. K. Le Guin")))
    assert with_surname.sections[0].header.paragraphs[0].text.startswith("LeGuin / ")
    assert with_surname.paragraphs[0].text.startswith("U. K. Le Guin\t")


@pytest.mark.parametrize("author,surname", [("Ursula K. Le Guin", "Le Guin"), ("Vincent van Gogh", "van Gogh"),
                                            ("Martin Luther King Jr.", "King"),
                                            ("Sor Juana Inés de la Cruz", "de la Cruz"),
                                            ("Ada Lovelace", "Lovelace"), ("Homer", "Homer"), ("村上春樹", "村上春樹")])
def test_surname_keeps_its_particles(author, surname):
    assert books.surname_of(author) == surname


def test_docx_italics_are_real_italics_not_asterisks():
    document = _docx(books.to_docx(_info(), [_node(0, "She was *very* tired and **so** cold; 5 * 3 stays.")]))
    body = next(p for p in document.paragraphs if "tired" in p.text)
    assert body.text == "She was very tired and so cold; 5 * 3 stays."
    assert [(r.text, bool(r.italic), bool(r.bold)) for r in body.runs] == [
        ("She was ", False, False), ("very", True, False), (" tired and ", False, False), ("so", False, True),
        (" cold; 5 * 3 stays.", False, False)]


def test_cjk_text_is_counted_by_character():
    chinese = "龙很害怕火。" * 300  # 1,500 ideographs (and the full stops), no spaces
    document = _docx(books.to_docx(_info(language="zh"), [_node(0, chinese)]))
    assert document.paragraphs[0].text.endswith("about 1,500 characters")
    english = _docx(books.to_docx(_info(), [_node(0, "word " * 1460)]))
    assert english.paragraphs[0].text.endswith("about 1,500 words")


CONTROL = "Bell\x07 and escape\x1b and form\x0c feed, a C1\x85 control, and U+FFFE\ufffe."


def test_control_characters_a_model_may_emit_are_left_out_of_both_books():
    """Seen failing before the fix: python-docx raised ValueError and the EPUB's XHTML was not XML."""
    from lxml import etree

    path = [_node(0, CONTROL, chapter={"number": 1, "title": "Bad\x01 title"}), _node(1, "fine")]
    info = _info(title="Title\x02")
    document = _docx(books.to_docx(info, path, author="Ada\x03"))
    assert any(p.text == "Bell and escape and form feed, a C1 control, and U+FFFE." for p in document.paragraphs)
    epub = books.to_epub(info, path, author="Ada\x03")
    with zipfile.ZipFile(io.BytesIO(epub)) as z:
        for name in z.namelist():
            if name.endswith((".xhtml", ".opf", ".ncx")):
                etree.fromstring(z.read(name))  # well-formed XML 1.0
        chapter = z.read(next(n for n in z.namelist() if n.endswith("chapter-001.xhtml"))).decode()
    assert "Bell and escape" in chapter and "Bad title" in chapter


@pytest.mark.slow
def test_an_epub_with_emphasis_and_control_characters_passes_epubcheck(book, tmp_path):
    from .test_export_books import epubcheck

    loom, info = book
    path = loom.path(info.id)
    path[0] = dataclasses.replace(path[0], paragraph=CONTROL + " *and emphasis*")
    target = tmp_path / "control.epub"
    target.write_bytes(books.to_epub(info, path, author="Ada\x03 Lovelace"))
    epubcheck(target)


def test_the_contact_block_and_surname_come_from_the_config_file(tmp_path, capsys, monkeypatch):
    from recurrentgpt.cli import main

    monkeypatch.chdir(tmp_path)
    fast = ["--db", str(tmp_path / "lib.db"), "--model", "scripted", "--embedder", "hash"]
    for key, value in (("author", "Ursula K. Le Guin"), ("address", "12 Harbour Lane; Saltmarsh"),
                       ("email", "ursula@example.org"), ("surname", "LeGuin")):
        assert main(["config", "set", key, value]) == 0
    assert main([*fast, "new", "fantasy", "a dragon", "--opening-paragraphs", "2"]) == 0
    sid = capsys.readouterr().out.split("(story ")[1].split(")")[0]
    assert main([*fast, "export", sid, "-f", "docx", "-o", "m.docx"]) == 0
    document = _docx((tmp_path / "m.docx").read_bytes())
    assert [p.text for p in document.paragraphs[:4]][1:] == ["12 Harbour Lane", "Saltmarsh", "ursula@example.org"]
    assert document.paragraphs[0].text.startswith("Ursula K. Le Guin\tabout ")
    assert document.sections[0].header.paragraphs[0].text.startswith("LeGuin / ")
    assert main([*fast, "export", sid, "-f", "docx", "-o", "n.docx", "--surname", "Guin"]) == 0
    assert _docx((tmp_path / "n.docx").read_bytes()).sections[0].header.paragraphs[0].text.startswith("Guin / ")


@pytest.mark.parametrize("fmt", ["docx", "epub", "odt"])
def test_any_damage_to_a_book_is_an_input_error_or_a_reading(book, fmt):
    """Bytes flipped anywhere in a real file: the reader returns a manuscript or raises InputError, never
    another exception (which the command line would show as a traceback)."""
    import random

    loom, info = book
    data = _odt(ODT_BODY, title="T") if fmt == "odt" else loom.export_bytes(info.id, fmt)
    rng = random.Random(7)
    for _ in range(60):
        damaged = bytearray(data)
        for _ in range(rng.choice([1, 4, 32])):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            read_manuscript(bytes(damaged), f"book.{fmt}")
        except InputError:
            pass


@pytest.mark.parametrize("fmt", ["docx", "epub"])
def test_an_imported_book_is_a_story_with_real_chapters_that_exports_the_same(book, tmp_path, model, embedder, fmt):
    """The round trip a writer makes: export, import into a new story, export again."""
    loom, info = book
    data = loom.export_bytes(info.id, fmt, author="Ada Lovelace")
    writer = Loom.open(tmp_path / "second.db", model, embedder, seed=1)
    imported = writer.import_manuscript(read_manuscript(data, f"book.{fmt}"), genre="fantasy")
    assert imported.title == "The Candle Keeper"
    assert expected(writer, imported) == expected(loom, info)
    path = writer.path(imported.id)
    assert [n.meta["chapter"] for n in path] == [1, 1, 1, 2, 2, 2, 3, 3]
    # the loom counts the chapter it continues from where the imported chapter started
    state = writer.state(imported.id)
    assert (state.chapter, state.paragraphs_in_chapter, state.summaries) == (3, 2, [])
    again = read_manuscript(writer.export_bytes(imported.id, fmt, author="Ada Lovelace"), f"again.{fmt}")
    assert [(c.title, c.blocks) for c in again.chapters] == expected(loom, info)
    writer.close()


@pytest.mark.parametrize("case", ["200 MB", "damaged", "encrypted"])
def test_the_cli_refuses_a_bad_book_in_one_line_and_writes_nothing(tmp_path, capsys, book, case):
    from recurrentgpt.cli import main

    _, before = _library(tmp_path)
    path = tmp_path / "book.docx"
    if case == "200 MB":
        with open(path, "wb") as f:  # sparse: the size is checked before a byte is read
            f.write(b"PK\x03\x04")
            f.truncate(200_000_000)
    elif case == "damaged":
        path.write_bytes(_docx_bytes(book)[:5000])
    else:
        path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 4000)
    code = main(["--db", str(tmp_path / "lib.db"), "--model", "scripted", "--embedder", "hash", "import", str(path),
                 "--genre", "fantasy"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert _after(tmp_path) == before


def test_the_cli_imports_a_docx_with_its_title_author_and_chapters(tmp_path, capsys, book):
    from recurrentgpt.cli import main

    loom, info = book
    path = tmp_path / "book.docx"
    path.write_bytes(loom.export_bytes(info.id, "docx", author="Ada Lovelace"))
    code = main(["--db", str(tmp_path / "lib.db"), "--model", "scripted", "--embedder", "hash", "import", str(path),
                 "--genre", "fantasy"])
    out = capsys.readouterr().out
    assert code == 0 and "The Candle Keeper" in out and "3 chapters" in out and "8 paragraphs" in out
