"""EPUB (ebooklib) and DOCX (python-docx) files of a story path, for readers and for submissions.

The DOCX follows standard manuscript format (as in William Shunn's guide, novel form): a title page
with the contact block (name, address, phone, email: ``Contact``) and an approximate word count (CJK
characters counted one each), the title centred half-way down; then the text
in 12-point Times New Roman, double-spaced, 1-inch margins, first lines indented half an inch, a
running header "Surname / Title / page", chapters on new pages, scene breaks as a centred "#", and
"END" after the last line. The writer's Markdown emphasis (``*italics*``, ``**bold**``) becomes real
italics and bold in both books. The EPUB has a title page, Dublin Core metadata, one section per chapter
(one section when the story has none) and a table of contents. Characters XML cannot hold (control
characters a model may emit) are left out of both.

Both libraries are the ``export`` extra and are imported only when a book is written.
"""

from __future__ import annotations

import html
import io
import re
import time
from dataclasses import dataclass, replace
from typing import Any

from .errors import ConfigError
from .export import Section, count_words, emphasis_spans, has_chapters, sections, xml_safe
from .story import Node, StoryInfo

MANUSCRIPT_FONT = "Times New Roman"


def _need(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"exporting {what} needs the 'export' extra: pip install 'recurrentgpt[export]'") from None


# -- EPUB ---------------------------------------------------------------------------------------

CSS = """body { font-family: serif; line-height: 1.5; }
h1, h2 { text-align: center; }
p { text-indent: 1.5em; margin: 0; }
p.scene-break { text-align: center; text-indent: 0; margin: 1em 0; }
.title-page { text-align: center; margin-top: 30%; }
.title-page p { text-indent: 0; margin: 0.5em 0; }
"""


def _xhtml_inline(text: str) -> str:
    """A paragraph as XHTML: its emphasis as <em>/<strong>, everything else escaped."""
    out = []
    for run, italic, bold in emphasis_spans(text):
        piece = html.escape(run)
        if bold:
            piece = f"<strong>{piece}</strong>"
        if italic:
            piece = f"<em>{piece}</em>"
        out.append(piece)
    return "".join(out)


def _xhtml_blocks(section: Section) -> str:
    return "\n".join('<p class="scene-break">#</p>' if b is None else f"<p>{_xhtml_inline(b)}</p>"
                     for b in section.blocks)


def _safe(info: StoryInfo, path: list[Node]) -> tuple[StoryInfo, list[Section]]:
    """The story's metadata and sections without the characters XML 1.0 cannot hold (a book with them is
    invalid: EPUB readers refuse it and python-docx raises)."""
    info = replace(info, title=xml_safe(info.title), genre=xml_safe(info.genre), topic=xml_safe(info.topic),
                   premise=xml_safe(info.premise))
    parts = [Section(xml_safe(s.title), [None if b is None else xml_safe(b) for b in s.blocks])
             for s in sections(path)]
    return info, parts


def to_epub(info: StoryInfo, path: list[Node], *, author: str = "") -> bytes:
    epub = _need("ebooklib.epub", "EPUB")
    info, parts = _safe(info, path)
    author = xml_safe(author)
    language = info.settings.language or "en"
    book = epub.EpubBook()
    book.set_identifier(f"recurrentgpt-{info.id}")
    book.set_title(info.title)
    book.set_language(language)
    if author:
        book.add_author(author)
    book.add_metadata("DC", "subject", info.genre)
    book.add_metadata("DC", "description", info.premise or info.topic)
    book.add_metadata("DC", "date", time.strftime("%Y-%m-%d", time.gmtime(info.updated_at or time.time())))
    style = epub.EpubItem(uid="style", file_name="style.css", media_type="text/css", content=CSS)
    book.add_item(style)

    byline = f"<p>by {html.escape(author)}</p>" if author else ""
    title_page = epub.EpubHtml(title=info.title, file_name="title.xhtml", lang=language)
    title_page.content = (f'<div class="title-page"><h1>{html.escape(info.title)}</h1>{byline}'
                          f"<p><em>{html.escape(info.genre)}</em></p></div>")
    title_page.add_item(style)
    book.add_item(title_page)

    chapters = []
    for i, section in enumerate(parts, 1):
        name = section.title or (info.title if len(parts) == 1 else f"Part {i}")
        chapter = epub.EpubHtml(title=name, file_name=f"chapter-{i:03d}.xhtml", lang=language)
        heading = f"<h2>{html.escape(section.title)}</h2>\n" if section.title else ""
        chapter.content = heading + (_xhtml_blocks(section) or "<p></p>")
        chapter.add_item(style)
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = [epub.Link("title.xhtml", info.title, "title")] + chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = [title_page, "nav", *chapters]
    buffer = io.BytesIO()
    epub.write_epub(buffer, book, {})
    return buffer.getvalue()


# -- DOCX (standard manuscript format) ----------------------------------------------------------


def _page_number_field(paragraph: Any) -> None:
    """A PAGE field: Word fills in the number on every page."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    run = paragraph.add_run()
    for kind, text in (("begin", None), (None, "PAGE"), ("end", None)):
        if kind:
            element = OxmlElement("w:fldChar")
            element.set(qn("w:fldCharType"), kind)
        else:
            element = OxmlElement("w:instrText")
            element.set(qn("xml:space"), "preserve")
            element.text = text
        run._r.append(element)


@dataclass(frozen=True)
class Contact:
    """The title page's contact block (the config's ``legal_name``, ``address``, ``phone``, ``email``) and
    the running header's surname (``surname``; otherwise guessed from the author's name)."""

    legal_name: str = ""  # the name on contracts, when the byline is a pen name
    address: str = ""  # lines separated by newlines or ";"
    phone: str = ""
    email: str = ""
    surname: str = ""

    def lines(self, author: str) -> list[str]:
        address = [ln.strip() for ln in re.split(r"[\n;]", self.address) if ln.strip()]
        return [ln for ln in (self.legal_name or author, *address, self.phone, self.email) if ln]


# particles that belong to a surname ("Le Guin", "van Gogh", "de la Cruz") and suffixes that do not
_PARTICLES = {"le", "la", "de", "del", "della", "der", "den", "des", "di", "da", "du", "van", "von", "ter", "ten",
              "st.", "saint", "al", "el", "bin", "ibn", "mac", "dos", "das", "y"}
_SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "phd", "md"}


def surname_of(author: str) -> str:
    """The surname for the running header when the writer set none: the last word with the particles
    before it ("Ursula K. Le Guin" -> "Le Guin"), without "Jr."; a name written without spaces whole."""
    words = [w for w in re.sub(r",\s*(jr\.?|sr\.?|ii|iii|iv)$", "", author.strip(), flags=re.I).split()]
    while len(words) > 1 and words[-1].casefold().strip(",") in _SUFFIXES:
        words.pop()
    if not words:
        return ""
    start = len(words) - 1
    while start > 1 and words[start - 1].casefold() in _PARTICLES:
        start -= 1
    return " ".join(words[start:]).strip(",")


def _approximate(parts: list[Section]) -> str:
    """Manuscripts round the count: to the nearest 100 (nearest 1,000 past 10,000). A text mostly in CJK
    scripts is counted in characters, as those manuscripts are."""
    words = cjk = 0
    for section in parts:
        for p in section.paragraphs:
            w, c = count_words(p)
            words, cjk = words + w, cjk + c
    total = words + cjk
    step = 1000 if total >= 10_000 else 100
    return f"about {max(step, round(total / step) * step):,} {'characters' if cjk > words else 'words'}"


def _runs(paragraph: Any, text: str) -> Any:
    """The text's Markdown emphasis as italic and bold runs."""
    for run_text, italic, bold in emphasis_spans(text):
        run = paragraph.add_run(run_text)
        if italic:
            run.italic = True
        if bold:
            run.bold = True
    return paragraph


def to_docx(info: StoryInfo, path: list[Node], *, author: str = "", contact: Contact | None = None) -> bytes:
    docx = _need("docx", "DOCX")
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING, WD_TAB_ALIGNMENT
    from docx.shared import Inches, Pt, RGBColor

    info, parts = _safe(info, path)
    author = xml_safe(author)
    contact = contact or Contact()
    contact = Contact(*(xml_safe(getattr(contact, f)) for f in ("legal_name", "address", "phone", "email", "surname")))
    document = docx.Document()
    props = document.core_properties
    props.title, props.author, props.subject, props.keywords = info.title, author, info.genre, info.genre
    props.comments = "Written with recurrentgpt"

    for name in ("Normal", "Title", "Heading 1"):
        style = document.styles[name]
        style.font.name, style.font.size = MANUSCRIPT_FONT, Pt(12)
        style.font.bold, style.font.italic, style.font.color.rgb = False, False, RGBColor(0, 0, 0)
        rpr = style.element.get_or_add_rPr()
        rpr.get_or_add_rFonts().set("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia",
                                    MANUSCRIPT_FONT)
        fmt = style.paragraph_format
        fmt.line_spacing_rule = WD_LINE_SPACING.DOUBLE
        fmt.space_before, fmt.space_after = Pt(0), Pt(0)
    document.styles["Normal"].paragraph_format.first_line_indent = Inches(0.5)
    for name in ("Title", "Heading 1"):
        fmt = document.styles[name].paragraph_format
        fmt.alignment, fmt.first_line_indent = WD_ALIGN_PARAGRAPH.CENTER, Inches(0)
    # the Title style draws a rule under itself; a manuscript has none
    title_ppr = document.styles["Title"].element.pPr
    if title_ppr is not None:
        for border in title_ppr.findall("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}pBdr"):
            title_ppr.remove(border)

    section = document.sections[0]
    for side in ("top_margin", "bottom_margin", "left_margin", "right_margin"):
        setattr(section, side, Inches(1))
    section.different_first_page_header_footer = True  # no running header on the title page
    header = section.header.paragraphs[0]
    header.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    header.paragraph_format.first_line_indent = Inches(0)
    surname = contact.surname.strip() or surname_of(author) or "Anonymous"
    short_title = info.title if len(info.title) <= 40 else info.title[:37] + "…"
    header.add_run(f"{surname} / {short_title} / ")
    _page_number_field(header)

    def plain(text: str = "", align: Any = None) -> Any:
        p = document.add_paragraph(text)
        p.paragraph_format.first_line_indent = Inches(0)
        if align is not None:
            p.alignment = align
        return p

    # title page: contact block top left (single-spaced), word count top right, title half-way down
    block = contact.lines(author) or [""]
    for i, line in enumerate(block):
        top = plain(line, WD_ALIGN_PARAGRAPH.LEFT)
        top.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
        if i == 0:
            top.paragraph_format.tab_stops.add_tab_stop(Inches(6.5), alignment=WD_TAB_ALIGNMENT.RIGHT)
            top.add_run("\t" + _approximate(parts))
    for _ in range(max(4, 10 - len(block))):
        plain()
    document.add_paragraph(info.title, style="Title")
    if author:
        plain(f"by {author}", WD_ALIGN_PARAGRAPH.CENTER)

    for part in parts:
        opening = []  # the part's first paragraphs: the first one starts a new page
        if part.title or has_chapters(parts):
            opening = [plain() for _ in range(4)]  # chapter openings start about a third of the way down
            opening.append(document.add_paragraph(part.title or info.title, style="Heading 1"))
        for block in part.blocks:
            if block is None:
                opening.append(plain("#", WD_ALIGN_PARAGRAPH.CENTER))
            else:
                opening.append(_runs(document.add_paragraph(), block))
        if opening:
            opening[0].paragraph_format.page_break_before = True
    plain("END", WD_ALIGN_PARAGRAPH.CENTER)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
