"""Read what a writer brings in: a manuscript to continue (text, Markdown, DOCX, EPUB, ODT), or a tree
exported by `export --format tree`.

A manuscript is read into a ``Manuscript``: its title and author (from the file's metadata, or a
Markdown "# Title"), and its chapters (``export.Section``: paragraphs in order, ``None`` for a scene
break). Headings (DOCX "Heading N"/"Title" styles, EPUB h1-h3 and spine documents, ODT outline
headings, Markdown "##") start chapters; italics become Markdown emphasis (``*so*``), bold ``**so**``.
Everything is read and checked before the loom writes anything, so a bad file changes nothing.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, Iterator, get_args

from .errors import ConfigError, InputError
from .export import SCENE_BREAK_MARKERS, TREE_FORMAT, Section, one_paragraph
from .story import Node, NodeKind, Settings, StoryInfo, check_length

MAX_MANUSCRIPT_BYTES = 5_000_000  # ~ 10 novels; larger files are refused before anything is written
# A DOCX/EPUB/ODT carries images and fonts beside its text: the file may be larger than its text, but
# no novel needs more, and what it unpacks to is bounded too (a zip bomb is refused, not inflated).
MAX_BOOK_BYTES = 50_000_000
MAX_UNPACKED_BYTES = 200_000_000


def read_text(data: bytes, what: str = "the file") -> str:
    if not data.strip():
        raise InputError(f"{what} is empty")
    if len(data) > MAX_MANUSCRIPT_BYTES:
        raise InputError(f"{what} is {len(data) / 1e6:.1f} MB; the limit is {MAX_MANUSCRIPT_BYTES / 1e6:.0f} MB")
    if b"\x00" in data[:8192]:
        raise InputError(f"{what} is not text (it contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text") from None


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs are separated by blank lines; a file without blank lines has one per line.
    Markdown headings and horizontal rules are dropped; wrapped lines are joined."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = re.split(r"\n\s*\n", text) if re.search(r"\n\s*\n", text) else text.split("\n")
    paragraphs = []
    for block in blocks:
        lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
        lines = [ln for ln in lines if not re.fullmatch(r"#{1,6}\s.*|[-*_=]{3,}", ln)]
        if lines:
            paragraph = " ".join(lines)
            check_length("paragraph", paragraph)
            paragraphs.append(paragraph)
    if not paragraphs:
        raise InputError("the manuscript has no paragraphs")
    return paragraphs


def manuscript_title(text: str) -> str:
    """The manuscript's own title: a first-level Markdown heading before the first paragraph ("" if none).
    Backslash escapes (as our Markdown export writes them) are undone."""
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line.strip()
        if not line:
            continue
        match = re.fullmatch(r"#\s+(.+?)(?:\s+#+)?", line)
        if match:
            # CommonMark: a backslash before any ASCII punctuation escapes it (export.escape_markdown's included)
            return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", match.group(1)).strip()[:200]
        if not re.fullmatch(r"#{2,6}\s.*|[-*_=]{3,}", line):
            return ""  # the text starts with prose: no title of its own
    return ""


def parse_tree(raw: bytes) -> tuple[StoryInfo, list[Node], dict[str, str]]:
    """Validate an exported tree: known format, unique ids, parents present, no cycles; parents first."""
    text = read_text(raw, "the tree file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"the tree file is not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict) or data.get("format") != TREE_FORMAT:
        raise InputError(f"the file is not a recurrentgpt tree (format '{TREE_FORMAT}' expected)")
    try:
        s = data["story"]
        info = StoryInfo(
            id=str(s["id"]),
            title=str(s["title"]),
            genre=str(s["genre"]),
            topic=str(s["topic"]),
            premise=str(s.get("premise", "")),
            outline=str(s.get("outline", "")),
            mode="fiction" if s.get("mode") == "fiction" else "writer",
            settings=Settings.from_dict(s.get("settings")),
            profile=dict(s.get("profile") or {}),
            head_id=None if s.get("head_id") is None else str(s["head_id"]),
            created_at=float(s.get("created_at", 0)),
            updated_at=float(s.get("updated_at", 0)),
        )
        nodes = [_node(n, info.id) for n in data["nodes"]]
        bookmarks = {str(k): str(v) for k, v in (data.get("bookmarks") or {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InputError(f"the tree file is malformed: {type(e).__name__} {e}") from None
    return info, _parents_first(nodes), bookmarks


def _node(n: dict[str, Any], story_id: str) -> Node:
    paragraph = str(n["paragraph"])
    if not paragraph.strip():
        raise ValueError(f"node {n.get('id')} has an empty paragraph")
    return Node(
        id=str(n["id"]),
        story_id=story_id,
        parent_id=None if n.get("parent_id") is None else str(n["parent_id"]),
        depth=int(n["depth"]),
        kind=_kind(n.get("kind", "import")),
        plan=str(n.get("plan", "")),
        paragraph=paragraph,
        rationale=str(n.get("rationale", "")),
        short_memory=str(n.get("short_memory", "")),
        plans=tuple(str(p) for p in n.get("plans", [])),
        meta=dict(n.get("meta") or {}),
        created_at=float(n.get("created_at", 0)),
        pruned=bool(n.get("pruned", False)),
        synopsis=str(n.get("synopsis") or ""),
    )


def _kind(kind: Any) -> Any:
    if kind not in get_args(NodeKind):
        raise ValueError(f"unknown node kind {kind!r}")
    return kind


def _parents_first(nodes: list[Node]) -> list[Node]:
    by_id: dict[str, Node] = {}
    for n in nodes:
        if n.id in by_id:
            raise InputError(f"the tree file has node {n.id} twice")
        by_id[n.id] = n
    if not nodes:
        raise InputError("the tree file has no nodes")
    for n in nodes:
        if n.parent_id is not None and n.parent_id not in by_id:
            raise InputError(f"node {n.id} names a parent {n.parent_id} that is not in the file")
    ordered: list[Node] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done
    for start in nodes:
        chain = []
        current: Node | None = start
        while current is not None and state.get(current.id) != 2:
            if state.get(current.id) == 1:
                raise InputError(f"the tree file has a cycle through node {current.id}")
            state[current.id] = 1
            chain.append(current)
            current = by_id.get(current.parent_id) if current.parent_id else None
        for n in reversed(chain):
            state[n.id] = 2
            ordered.append(n)
    return ordered


# -- manuscripts: text, Markdown, DOCX, EPUB, ODT ---------------------------------------------------


@dataclass
class Manuscript:
    """A writer's book as read from its file: metadata and chapters (one untitled one when it has none)."""

    title: str = ""
    author: str = ""
    chapters: list[Section] = field(default_factory=list)
    source: str = "text"  # text, docx, epub or odt

    @property
    def paragraphs(self) -> list[str]:
        return [p for c in self.chapters for p in c.paragraphs]

    @property
    def has_chapters(self) -> bool:
        return len(self.chapters) > 1 or any(c.title for c in self.chapters)


def chapter_meta(manuscript: Manuscript) -> list[dict[str, Any]]:
    """The node meta that makes a manuscript's chapters the story's own, one dict per paragraph: every node
    carries its chapter's number (as the loom's steps do); a chapter's first node its heading as written
    (``chapter_title``) and, from the second chapter on, a ``chapter_end`` with no summary (where the loom
    counts a chapter from; an imported chapter has none); a paragraph after a scene break ``scene_break``."""
    out: list[dict[str, Any]] = []
    for number, chapter in enumerate(manuscript.chapters, 1):
        first, broken = True, False
        for block in chapter.blocks:
            if block is None:
                broken = True
                continue
            meta: dict[str, Any] = {"chapter": number}
            if first and manuscript.has_chapters:
                meta["chapter_title"] = chapter.title
            if first and number > 1:
                meta["chapter_end"] = {"summary": "", "imported": True}
            if broken:
                meta["scene_break"] = True
            out.append(meta)
            first = broken = False
    return out


class _Builder:
    """Collects chapters, paragraphs and scene breaks in reading order, dropping empty chapters."""

    def __init__(self) -> None:
        self.chapters: list[Section] = [Section("")]

    def heading(self, title: str) -> None:
        title = one_paragraph(title)[:200]
        if self.chapters[-1].paragraphs:
            self.chapters.append(Section(title))
        else:  # a chapter with no text yet (a part title above a chapter title): the later heading names it
            self.chapters[-1] = Section(title or self.chapters[-1].title)

    def paragraph(self, text: str) -> None:
        text = one_paragraph(text)
        if not text or not re.search(r"\w", text) and text not in SCENE_BREAK_MARKERS:
            if text:  # decoration only ("~", "•"): a break in the text, not a paragraph
                self.scene_break()
            return
        if text in SCENE_BREAK_MARKERS:
            self.scene_break()
            return
        check_length("paragraph", text)
        self.chapters[-1].blocks.append(text)

    def scene_break(self) -> None:
        blocks = self.chapters[-1].blocks
        if blocks and blocks[-1] is not None:
            blocks.append(None)

    def done(self, title: str, author: str, source: str) -> Manuscript:
        chapters = [c for c in self.chapters if c.paragraphs]
        for c in chapters:
            while c.blocks and c.blocks[-1] is None:
                c.blocks.pop()
            while c.blocks and c.blocks[0] is None:
                c.blocks.pop(0)
        if not chapters:
            raise InputError("the manuscript has no paragraphs")
        if sum(len(p) for c in chapters for p in c.paragraphs) > MAX_MANUSCRIPT_BYTES:
            raise InputError(f"the manuscript's text is over {MAX_MANUSCRIPT_BYTES / 1e6:.0f} million characters, "
                             f"the limit")
        return Manuscript(one_paragraph(title)[:200], one_paragraph(author)[:200], chapters, source)


def _emphasis(segments: Iterator[tuple[str, bool, bool]]) -> str:
    """Runs of (text, italic, bold) as one Markdown line: ``*italic*``, ``**bold**``; the spaces at a run's
    edges go outside its markers (``*so *`` would not be emphasis)."""
    merged: list[list[Any]] = []
    for text, italic, bold in segments:
        if not text:
            continue
        if not text.strip() and merged:  # a space between two italic runs keeps them one emphasis
            italic, bold = merged[-1][1], merged[-1][2]
        if merged and merged[-1][1:] == [italic, bold]:
            merged[-1][0] += text
        else:
            merged.append([text, italic, bold])
    out = []
    for text, italic, bold in merged:
        marker = ("*" if italic else "") + ("**" if bold else "")
        if not marker or not text.strip():
            out.append(text)
            continue
        core = text.strip()
        lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()):]
        out.append(f"{lead}{marker}{core}{marker[::-1]}{trail}")
    return "".join(out)


_CHAPTER_LINE = re.compile(
    r"(?i)(?:(?:chapter|part|book)\s+(?:\d+|[ivxlcdm]+|[a-z]+(?:-[a-z]+)?)(?:\s*[:.—–-]\s*[^.!?]{0,80})?"
    r"|prologue|epilogue|interlude)"
    r"|第[0-9一二三四五六七八九十百千零〇两]+[章回节卷部](?:\s*\S.{0,40})?")
_MD_HEADING = re.compile(r"(#{1,6})\s+(.+?)(?:\s+#+)?")


def _unescape_markdown(text: str) -> str:
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text).strip()


def parse_text(text: str) -> Manuscript:
    """Plain text or Markdown. Paragraphs are separated by blank lines (one a line when there are none);
    a first "# Title" is the title; other headings, and a line alone such as "Chapter 3: The Fire" or
    "第三章", start chapters; "* * *", "***", "---" or "#" alone is a scene break."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    title = manuscript_title(text)
    blocks = re.split(r"\n\s*\n", text) if re.search(r"\n\s*\n", text) else text.split("\n")
    book = _Builder()
    title_seen = False
    for block in blocks:
        lines: list[str] = []
        for line in (ln.strip() for ln in block.split("\n")):
            heading = _MD_HEADING.fullmatch(line) if line else None
            if heading or re.fullmatch(r"[-*_=]{3,}|(\* ){2,}\*", line):
                if lines:
                    book.paragraph(" ".join(lines))
                    lines = []
                if not heading:
                    book.scene_break()
                elif len(heading.group(1)) == 1 and title and not title_seen and not book.chapters[-1].blocks:
                    title_seen = True  # the book's own title, not a chapter
                else:
                    book.heading(_unescape_markdown(heading.group(2)))
            elif line:
                lines.append(line)
        if len(lines) == 1 and len(lines[0]) <= 90 and _CHAPTER_LINE.fullmatch(lines[0]):
            book.heading(lines[0])
        elif lines:
            book.paragraph(" ".join(lines))
    return book.done(title, "", "text")


def read_manuscript(data: bytes, name: str = "the manuscript") -> Manuscript:
    """A manuscript from its file's bytes, whatever its format (told by its content, not its name).
    A corrupt, encrypted or oversized file is one ``InputError``; nothing is written before this returns."""
    if not data.strip():
        raise InputError(f"{name} is empty")
    if data[:4] == b"PK\x03\x04":
        return _read_container(data, name)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise InputError(f"{name} is a password-protected Office file or an old .doc: open it in your word "
                         "processor and save it as .docx (without a password), .odt or .txt")
    if data[:5] == b"%PDF-":
        raise InputError(f"{name} is a PDF, which keeps no paragraphs: export it from your word processor as "
                         ".docx, .odt, .epub or .txt")
    if data[:5] == b"{\\rtf":
        raise InputError(f"{name} is RTF: save it as .docx, .odt or .txt")
    return parse_text(read_text(data, name))


def _read_container(data: bytes, name: str) -> Manuscript:
    if len(data) > MAX_BOOK_BYTES:
        raise InputError(f"{name} is {len(data) / 1e6:.0f} MB; the limit for a DOCX, EPUB or ODT file is "
                         f"{MAX_BOOK_BYTES / 1e6:.0f} MB (images included: save a copy without them)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
        names = {i.filename for i in infos}
        if any(i.flag_bits & 0x1 for i in infos):
            raise InputError(f"{name} is encrypted: save a copy without a password")
        unpacked = sum(i.file_size for i in infos)
        if unpacked > MAX_UNPACKED_BYTES:
            raise InputError(f"{name} unpacks to {unpacked / 1e6:.0f} MB; "
                             f"the limit is {MAX_UNPACKED_BYTES / 1e6:.0f} MB")
        mimetype = archive.read("mimetype").decode("ascii", "replace").strip() if "mimetype" in names else ""
        if mimetype == "application/epub+zip":
            reader = _read_epub
        elif mimetype == "application/vnd.oasis.opendocument.text":
            reader = _read_odt
        elif "word/document.xml" in names or "[Content_Types].xml" in names:
            reader = _read_docx
        elif mimetype.startswith("application/vnd.oasis.opendocument"):
            raise InputError(f"{name} is an OpenDocument file but not a text document ({mimetype})")
        else:
            raise InputError(f"{name} is a zip archive, not a DOCX, EPUB or ODT manuscript")
        return reader(data, archive, name)
    except (InputError, ConfigError):
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, KeyError, ValueError, OSError) as e:
        raise InputError(f"{name} is damaged and cannot be read ({type(e).__name__}: {str(e)[:120]})") from None
    except Exception as e:  # the parsers (lxml, python-docx, ebooklib) raise their own types on a broken file
        raise InputError(f"{name} is damaged and cannot be read ({type(e).__name__}: {str(e)[:120]})") from None


def _need(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"importing {what} needs the 'export' extra: pip install 'recurrentgpt[export]'") from None


# -- DOCX ------------------------------------------------------------------------------------------

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _on(element: Any, tag: str) -> bool | None:
    """A w:b / w:i toggle in run properties: absent None, else its w:val (default on)."""
    if element is None:
        return None
    found = element.find(f"{_W}{tag}")
    if found is None:
        return None
    return found.get(f"{_W}val", "true").lower() not in ("0", "false", "off", "none")


def _style_flag(style: Any, tag: str) -> bool:
    while style is not None:
        rpr = style.element.find(f"{_W}rPr")
        value = _on(rpr, tag)
        if value is not None:
            return value
        style = style.base_style
    return False


def _read_docx(data: bytes, archive: zipfile.ZipFile, name: str) -> Manuscript:
    docx = _need("docx", "DOCX")
    from docx.enum.style import WD_STYLE_TYPE

    document = docx.Document(io.BytesIO(data))
    props = document.core_properties
    styles = {s.style_id: s for s in document.styles}
    # python-docx looks a paragraph's style up by a scan of every style: once per style id here instead
    default = next((s for s in document.styles if s.type == WD_STYLE_TYPE.PARAGRAPH
                    and s.element.get(f"{_W}default") in ("1", "true")), None)
    traits: dict[str | None, tuple[str, bool, bool]] = {}

    def style_of(p: Any) -> tuple[str, bool, bool]:
        style_id = p._p.style
        if style_id not in traits:
            style = styles.get(style_id, default) if style_id else default
            traits[style_id] = (_docx_kind(style), _style_flag(style, "i"), _style_flag(style, "b"))
        return traits[style_id]

    book = _Builder()
    paragraphs = document.paragraphs
    kinds = [_outline_heading(p) or style_of(p)[0] for p in paragraphs]
    # the title page of a manuscript (contact block, word count, title, "by …") comes before the Title
    start = kinds.index("title") + 1 if "title" in kinds[:60] else 0
    title = props.title or (paragraphs[start - 1].text.strip() if start else "")
    author = props.author or ""
    if start < len(paragraphs) and re.fullmatch(r"(?i)by\s+.+", paragraphs[start].text.strip()):
        author = author or paragraphs[start].text.strip()[3:].strip()
        start += 1
    last = max((i for i in range(len(paragraphs)) if paragraphs[i].text.strip()), default=-1)
    for i in range(start, len(paragraphs)):
        p = paragraphs[i]
        if i == last and p.text.strip() == "END":  # the manuscript's closing mark, not its text
            break
        if kinds[i] in ("heading", "title"):
            book.heading(p.text)
            continue
        _, para_italic, para_bold = style_of(p)
        book.paragraph(_emphasis(_docx_runs(p._p, styles, para_italic, para_bold)))
    return book.done(title, author, "docx")


def _docx_kind(style: Any) -> str:
    while style is not None:
        style_name = (style.name or "").casefold()
        if style_name == "title":
            return "title"
        if re.fullmatch(r"heading \d", style_name):
            return "heading"
        style = style.base_style
    return "body"


def _outline_heading(p: Any) -> str:
    """A paragraph given an outline level directly (a heading in a custom style)."""
    ppr = p._p.pPr
    if ppr is not None and ppr.find(f"{_W}outlineLvl") is not None and p.text.strip():
        return "heading"
    return ""


def _docx_runs(p: Any, styles: dict[str, Any], italic: bool, bold: bool) -> Iterator[tuple[str, bool, bool]]:
    """The paragraph's runs (hyperlinks and fields included; deleted text and footnote marks not)."""
    for r in p.iter(f"{_W}r"):
        if any(a.tag in (f"{_W}del", f"{_W}moveFrom") for a in r.iterancestors()):
            continue
        rpr = r.find(f"{_W}rPr")
        run_style = None
        if rpr is not None and rpr.find(f"{_W}rStyle") is not None:
            run_style = styles.get(rpr.find(f"{_W}rStyle").get(f"{_W}val"))
        i = _on(rpr, "i")
        b = _on(rpr, "b")
        i = i if i is not None else (_style_flag(run_style, "i") if run_style is not None else italic)
        b = b if b is not None else (_style_flag(run_style, "b") if run_style is not None else bold)
        text = []
        for child in r:
            if child.tag == f"{_W}t":
                text.append(child.text or "")
            elif child.tag == f"{_W}tab":
                text.append("\t")
            elif child.tag in (f"{_W}br", f"{_W}cr"):
                text.append("\n")
            elif child.tag == f"{_W}noBreakHyphen":
                text.append("-")
        yield "".join(text), i, b


# -- EPUB ------------------------------------------------------------------------------------------

_FONT_OBFUSCATION = ("http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC")
_BLOCKS = {"p", "div", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "pre", "dd", "dt", "td", "th"}
_ITALIC = {"em", "i", "cite", "dfn", "var"}
_BOLD = {"strong", "b"}


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _epub_encrypted(archive: zipfile.ZipFile) -> bool:
    """DRM: encryption.xml naming anything but fonts (fonts are obfuscated by the standard, not locked)."""
    try:
        xml = archive.read("META-INF/encryption.xml")
    except KeyError:
        return False
    from lxml import etree

    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    for data in root.iter("{*}EncryptedData"):
        method = next(data.iter("{*}EncryptionMethod"), None)
        algorithm = method.get("Algorithm", "") if method is not None else ""
        uri = next((c.get("URI", "") for c in data.iter("{*}CipherReference")), "")
        if algorithm not in _FONT_OBFUSCATION or not re.search(r"(?i)\.(ttf|otf|woff2?)$", uri):
            return True
    return False


def _read_epub(data: bytes, archive: zipfile.ZipFile, name: str) -> Manuscript:
    if _epub_encrypted(archive):
        raise InputError(f"{name} is encrypted (DRM): only an EPUB without DRM can be imported")
    ebooklib = _need("ebooklib", "EPUB")
    from ebooklib import epub
    from lxml import html as lxml_html

    book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})
    title = next((t for t, _ in book.get_metadata("DC", "title") if t), "")
    author = next((a for a, _ in book.get_metadata("DC", "creator") if a), "")
    toc_titles = {}
    stack = list(book.toc)
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            item, children = item[0], item[1]
            stack.extend(children)
        href = getattr(item, "href", None) or getattr(item, "file_name", None)
        if href:
            toc_titles.setdefault(href.split("#")[0], getattr(item, "title", "") or "")
    out = _Builder()
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue
        content = item.get_content()
        if not content.strip():
            continue
        root = lxml_html.document_fromstring(content)
        body = root.find(".//body")
        if body is None:
            continue
        headings = [h for h in body.iter("h1", "h2", "h3") if h.text_content().strip()]
        if headings and one_paragraph(headings[0].text_content()) == one_paragraph(title) and not any(
                h.tag != "h1" for h in headings) and len(body.findall(".//p")) <= 4:
            continue  # the title page
        toc = toc_titles.get(item.get_name(), "")
        if not headings and toc and one_paragraph(toc) != one_paragraph(title):
            out.heading(toc)  # a chapter named only in the table of contents
        _html_blocks(body, out)
    return out.done(title, author, "epub")


def _html_blocks(element: Any, out: _Builder) -> None:
    for child in element:
        tag = _local(child.tag)
        if tag in ("script", "style", "nav", "aside", "table", "figure", "img", "svg"):
            continue
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            out.heading(child.text_content())
        elif tag == "hr" or "scene-break" in (child.get("class") or ""):
            out.scene_break()
        elif tag in _BLOCKS and not any(_local(d.tag) in _BLOCKS for d in child.iterdescendants()):
            out.paragraph(_emphasis(_html_runs(child, False, False)))
        elif tag in _BLOCKS or tag in ("section", "article", "main", "header", "footer", "ol", "ul", "dl", "body"):
            if (child.text or "").strip():
                out.paragraph(child.text)
            _html_blocks(child, out)
        if tag in _BLOCKS and (child.tail or "").strip():
            out.paragraph(child.tail)


def _html_runs(element: Any, italic: bool, bold: bool) -> Iterator[tuple[str, bool, bool]]:
    tag = _local(element.tag)
    style = (element.get("style") or "").replace(" ", "").lower()
    italic = italic or tag in _ITALIC or "font-style:italic" in style
    bold = bold or tag in _BOLD or re.search(r"font-weight:(bold|[6-9]00)", style) is not None
    if tag in ("script", "style", "rt", "rp") or "noteref" in (element.get("epub:type") or ""):
        pass
    elif tag == "br":
        yield "\n", italic, bold
    else:
        yield element.text or "", italic, bold
        for child in element:
            yield from _html_runs(child, italic, bold)
            if child.tail:
                yield child.tail, italic, bold
    return


# -- ODT (OpenDocument text: the zip's content.xml, read with the standard library) ----------------

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "fo": "urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
    "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0",
    "manifest": "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0",
}


def _q(prefixed: str) -> str:
    prefix, local = prefixed.split(":")
    return f"{{{_NS[prefix]}}}{local}"


def _odt_styles(*roots: Any) -> dict[str, tuple[bool | None, bool | None, str]]:
    """style name -> (italic, bold, parent style): from styles.xml and content.xml's automatic styles."""
    out: dict[str, tuple[bool | None, bool | None, str]] = {}
    for root in roots:
        for s in root.iter(_q("style:style")):
            props = s.find(_q("style:text-properties"))
            italic = bold = None
            if props is not None:
                if props.get(_q("fo:font-style")):
                    italic = props.get(_q("fo:font-style")) in ("italic", "oblique")
                if props.get(_q("fo:font-weight")):
                    bold = props.get(_q("fo:font-weight")) in ("bold", "600", "700", "800", "900")
            out[s.get(_q("style:name"), "")] = (italic, bold, s.get(_q("style:parent-style-name"), ""))
    return out


def _odt_flags(styles: dict[str, tuple[bool | None, bool | None, str]], name: str) -> tuple[bool | None, bool | None]:
    italic = bold = None
    seen = set()
    while name and name not in seen and name in styles:
        seen.add(name)
        i, b, parent = styles[name]
        italic = i if italic is None else italic
        bold = b if bold is None else bold
        name = parent
    return italic, bold


def _read_odt(data: bytes, archive: zipfile.ZipFile, name: str) -> Manuscript:
    import xml.etree.ElementTree as ET

    def parse(part: str) -> Any:
        try:
            return ET.fromstring(archive.read(part))
        except KeyError:
            return ET.Element("none")
        except ET.ParseError as e:
            raise InputError(f"{name} is damaged: its {part} is not XML ({e})") from None

    manifest = parse("META-INF/manifest.xml")
    if next(manifest.iter(_q("manifest:encryption-data")), None) is not None:
        raise InputError(f"{name} is password-protected: save a copy without a password")
    content, styles_root, meta = parse("content.xml"), parse("styles.xml"), parse("meta.xml")
    styles = _odt_styles(styles_root, content)
    title = next((t.text or "" for t in meta.iter(_q("dc:title"))), "")
    author = next((t.text or "" for t in meta.iter(_q("meta:initial-creator"))), "") or \
        next((t.text or "" for t in meta.iter(_q("dc:creator"))), "")
    text_root = next(content.iter(_q("office:text")), None)
    if text_root is None:
        raise InputError(f"{name} has no text body")
    out = _Builder()

    def runs(element: Any, italic: bool, bold: bool) -> Iterator[tuple[str, bool, bool]]:
        i, b = _odt_flags(styles, element.get(_q("text:style-name"), ""))
        italic, bold = (italic if i is None else i), (bold if b is None else b)
        yield element.text or "", italic, bold
        for child in element:
            tag = child.tag
            if tag == _q("text:s"):
                yield " " * int(child.get(_q("text:c"), "1") or 1), italic, bold
            elif tag == _q("text:tab"):
                yield "\t", italic, bold
            elif tag == _q("text:line-break"):
                yield "\n", italic, bold
            elif tag not in (_q("text:note"), _q("office:annotation"), _q("text:tracked-changes")):
                yield from runs(child, italic, bold)
            if child.tail:
                yield child.tail, italic, bold

    def blocks(element: Any) -> None:
        for child in element:
            if child.tag == _q("text:h"):
                out.heading("".join(t for t, _, _ in runs(child, False, False)))
            elif child.tag == _q("text:p"):
                style = child.get(_q("text:style-name"), "")
                if style.casefold() == "title" and not out.chapters[-1].blocks:
                    nonlocal title
                    title = title or "".join(t for t, _, _ in runs(child, False, False))
                    continue
                out.paragraph(_emphasis(runs(child, False, False)))
            elif child.tag in (_q("text:section"), _q("text:list"), _q("text:list-item"), _q("text:list-header")):
                blocks(child)

    blocks(text_root)
    return out.done(title, author, "odt")


def read_file(path: str, what: str, limit: int) -> bytes:
    """A file's bytes, refused by its size before it is read (a 200 MB file never reaches memory)."""
    from pathlib import Path

    file = Path(path)
    try:
        size = file.stat().st_size
        if file.is_dir():
            raise InputError(f"{what} is a folder, not a file: {path}")
        if size > limit:
            raise InputError(f"{what} {path} is {size / 1e6:.0f} MB; the limit is {limit / 1e6:.0f} MB")
        return file.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} not found: {path}") from None
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror}") from None
