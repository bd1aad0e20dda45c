"""Lorebooks in and out of the story bible: SillyTavern World Info, character cards and NovelAI lorebooks.

Formats (read by content, not by file name):

- SillyTavern World Info JSON: ``{"entries": {"0": {"key": [...], "comment": ..., "content": ...,
  "constant": ..., "order": ..., "disable": ...}}}``.
- Character cards: V1 (the fields at the top level), V2 (``spec: chara_card_v2``) and V3 (``spec:
  chara_card_v3``) JSON, or a PNG carrying the card base64-encoded in a ``chara`` (V2) or ``ccv3`` (V3)
  text chunk. The card's character becomes an entry; its ``character_book`` entries become entries.
- NovelAI lorebooks (``.lorebook``: ``{"lorebookVersion": …, "entries": [...], "categories": [...]}``).

How a lorebook entry maps onto a bible entry: its title (``comment``, ``name``, ``displayName``) is the
name, or its first key; its keys are the aliases; its content is the facts (one a line, or its sentences
packed into the bible's eight facts of 300 characters; a last line "Status: …" is the status); constant
(NovelAI: forced activation) is pinned. The bible has no priority number: the order of its entries is
the priority (``bible.select`` ranks entries of equal standing in the order they were added, and keeps
the first within its token budget), so entries are added highest ``order``/``insertion_order``/
``budgetPriority`` first, and exported with descending orders. What has no place in a bible (secondary
keys, probabilities, recursion and depth settings, greetings) is left out and counted in the summary.

Import is bounded and all or nothing: ``plan_import`` turns a file into the writer's changes plus a
summary, refusing nothing piecemeal; the loom then applies the changes in one new version of the node.
Exports carry the bible's own kind and status in each entry's ``extensions.recurrentgpt`` (and NovelAI
categories), so a bible survives the round trip.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from . import bible as canon
from .errors import InputError

MAX_LOREBOOK_BYTES = 20_000_000
MAX_IMPORT_ENTRIES = 2_000  # one import; the bible's own limit is bible.MAX_ENTRIES
FORMATS = ("st", "card", "novelai")
EXTENSION = "recurrentgpt"  # the key of our own fields in an entry's ``extensions``

_KIND_WORDS = {
    "character": "character", "characters": "character", "person": "character", "people": "character",
    "place": "place", "places": "place", "location": "place", "locations": "place", "setting": "place",
    "object": "object", "objects": "object", "item": "object", "items": "object", "artifact": "object",
    "group": "group", "groups": "group", "faction": "group", "factions": "group", "organization": "group",
    "rule": "rule", "rules": "rule", "concept": "rule", "concepts": "rule", "lore": "rule", "magic": "rule",
    "thread": "thread", "threads": "thread", "plot": "thread", "event": "event", "events": "event",
    "history": "event",
}


@dataclass
class LoreEntry:
    """One entry in a format-neutral form."""

    name: str
    keys: list[str]
    content: str
    constant: bool = False
    order: float = 0.0  # higher first
    enabled: bool = True
    kind: str | None = None
    status: str | None = None
    aliases: list[str] | None = None  # our own export's aliases, exactly (keys otherwise)
    facts: list[str] | None = None  # likewise the facts
    secondary: bool = False


@dataclass
class Lorebook:
    format: str  # "st", "card" or "novelai"
    name: str = ""
    entries: list[LoreEntry] = field(default_factory=list)
    unknown: Counter = field(default_factory=Counter)  # fields the format does not define, by name
    ignored: Counter = field(default_factory=Counter)  # the format's fields a bible has no place for
    character: str = ""  # a card: the character's name ({{char}} in the text)


@dataclass
class ImportPlan:
    changes: list[canon.Change]
    added: int = 0
    updated: int = 0
    skipped: list[str] = field(default_factory=list)  # one reason each, "name: why"
    notes: list[str] = field(default_factory=list)

    def summary(self, book: Lorebook) -> list[str]:
        what = {"st": "SillyTavern World Info", "card": "character card", "novelai": "NovelAI lorebook"}[book.format]
        lines = [f"{what}{' ' + repr(book.name) if book.name else ''}: {len(book.entries)} entries read; "
                 f"{self.added} added, {self.updated} updated, {len(self.skipped)} skipped"]
        reasons = Counter(s.split(": ", 1)[1] if ": " in s else s for s in self.skipped)
        for reason, n in reasons.most_common(8):
            lines.append(f"  skipped {n}: {reason}")
        lines += [f"  {n}" for n in self.notes]
        if book.ignored:
            lines.append("  left out (a bible has no place for them): "
                         + ", ".join(f"{k} ({n})" for k, n in book.ignored.most_common(8)))
        if book.unknown:
            lines.append("  unknown fields ignored: " + ", ".join(f"{k} ({n})" for k, n in book.unknown.most_common(8)))
        return lines


# -- reading -------------------------------------------------------------------------------------


def parse(data: bytes, name: str = "the lorebook") -> Lorebook:
    """A lorebook or character card from its file's bytes; one ``InputError`` if it is none of them."""
    if len(data) > MAX_LOREBOOK_BYTES:
        raise InputError(f"{name} is {len(data) / 1e6:.0f} MB; the limit for a lorebook is "
                         f"{MAX_LOREBOOK_BYTES / 1e6:.0f} MB")
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        chunks = png_text_chunks(data, name)
        for keyword in ("ccv3", "chara", "naidata"):
            if keyword in chunks:
                try:
                    data = base64.b64decode(chunks[keyword], validate=False)
                except (binascii.Error, ValueError):
                    raise InputError(f"{name}: its {keyword} chunk is not base64") from None
                break
        else:
            raise InputError(f"{name} is a PNG without a character card in it (no chara or ccv3 text chunk)")
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"{name} is not UTF-8 JSON") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{name} is not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{name} is not a lorebook (a JSON object was expected)")
    try:
        if "lorebookVersion" in doc:
            return _novelai(doc)
        if str(doc.get("spec", "")).startswith("chara_card") or ("first_mes" in doc and "name" in doc):
            return _card(doc)
        if isinstance(doc.get("entries"), (dict, list)):
            return _world_info(doc)
        if isinstance(doc.get("data"), dict) and "name" in doc["data"]:
            return _card(doc)
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        raise InputError(f"{name} is a malformed lorebook ({type(e).__name__}: {str(e)[:100]})") from None
    raise InputError(f"{name} is not a SillyTavern World Info file, character card or NovelAI lorebook")


def png_text_chunks(data: bytes, name: str = "the PNG") -> dict[str, str]:
    """The PNG's tEXt, zTXt and iTXt chunks by keyword (the first of each), read with the standard library."""
    out: dict[str, str] = {}
    at = 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if len(body) < length:
            raise InputError(f"{name} is a damaged PNG (a chunk runs past the end of the file)")
        at += 12 + length
        try:
            if kind == b"tEXt":
                keyword, _, text = body.partition(b"\0")
                out.setdefault(keyword.decode("latin-1"), text.decode("latin-1"))
            elif kind == b"zTXt":
                keyword, _, rest = body.partition(b"\0")
                out.setdefault(keyword.decode("latin-1"), _inflate(rest[1:]).decode("latin-1"))
            elif kind == b"iTXt":
                keyword, _, rest = body.partition(b"\0")
                compressed, rest = rest[0], rest[2:]
                _language, _, rest = rest.partition(b"\0")
                _translated, _, text = rest.partition(b"\0")
                out.setdefault(keyword.decode("latin-1"), (_inflate(text) if compressed else text).decode("utf-8"))
            elif kind == b"IEND":
                break
        except (zlib.error, UnicodeDecodeError, IndexError):
            raise InputError(f"{name} is a damaged PNG (a text chunk cannot be read)") from None
    return out


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_LOREBOOK_BYTES)
    if inflater.unconsumed_tail:
        raise InputError(f"a PNG text chunk unpacks to more than {MAX_LOREBOOK_BYTES / 1e6:.0f} MB")
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return []
    return [str(v).strip() for v in value if isinstance(v, (str, int, float)) and str(v).strip()]


def _ours(entry: Mapping[str, Any]) -> dict[str, Any]:
    ext = entry.get("extensions")
    ours = ext.get(EXTENSION) if isinstance(ext, dict) else None
    return ours if isinstance(ours, dict) else {}


def _with_ours(e: LoreEntry, ours: Mapping[str, Any]) -> LoreEntry:
    if ours.get("kind") in canon.KINDS:
        e.kind = ours["kind"]
    if isinstance(ours.get("status"), str):
        e.status = ours["status"]
    if isinstance(ours.get("aliases"), list):
        e.aliases = _strings(ours["aliases"])
    if isinstance(ours.get("facts"), list):
        e.facts = _strings(ours["facts"])
    return e


def _number(value: Any, default: float = 0.0) -> float:
    try:
        return float(value) if value is not None and not isinstance(value, bool) else default
    except (TypeError, ValueError):
        return default


ST_FIELDS = {
    "uid", "key", "keysecondary", "comment", "content", "constant", "vectorized", "selective", "selectiveLogic",
    "addMemo", "order", "position", "disable", "excludeRecursion", "preventRecursion", "delayUntilRecursion",
    "probability", "useProbability", "depth", "group", "groupOverride", "groupWeight", "scanDepth",
    "caseSensitive", "matchWholeWords", "useGroupScoring", "automationId", "role", "sticky", "cooldown", "delay",
    "displayIndex", "extensions", "characterFilter", "triggers", "ignoreBudget", "outletName",
    "matchPersonaDescription", "matchCharacterDescription", "matchCharacterPersonality",
    "matchCharacterDepthPrompt", "matchScenario", "matchCreatorNotes",
}
ST_IGNORED = {"keysecondary": "secondary keys", "probability": "probability", "depth": "insertion depth",
              "sticky": "sticky", "cooldown": "cooldown", "delay": "delay", "group": "inclusion groups"}


def _ignored_fields(book: Lorebook, entry: Mapping[str, Any], names: Mapping[str, str],
                    defaults: Mapping[str, Any]) -> None:
    for k, label in names.items():
        value = entry.get(k)
        if value not in (None, "", [], {}, False, 0) and value != defaults.get(k):
            book.ignored[label] += 1


def _world_info(doc: Mapping[str, Any]) -> Lorebook:
    raw = doc["entries"]
    items = list(raw.values()) if isinstance(raw, dict) else list(raw)
    book = Lorebook("st", name=str(doc.get("name") or ""))
    for k in doc:
        if k not in ("entries", "name", "originalData", "description", "extensions"):
            book.unknown[k] += 1
    for item in items:
        if not isinstance(item, dict):
            book.unknown["(an entry that is not an object)"] += 1
            continue
        if "keys" in item and "key" not in item:  # a character book's entries in a World Info file
            book.entries.append(_book_entry(book, item))
            continue
        for k in item:
            if k not in ST_FIELDS:
                book.unknown[k] += 1
        _ignored_fields(book, item, ST_IGNORED, {"probability": 100, "depth": 4})
        e = LoreEntry(name=str(item.get("comment") or "").strip(), keys=_strings(item.get("key")),
                      content=str(item.get("content") or ""), constant=bool(item.get("constant")),
                      order=_number(item.get("order"), 100), enabled=not item.get("disable"),
                      secondary=bool(_strings(item.get("keysecondary"))))
        book.entries.append(_with_ours(e, _ours(item)))
    return book


CARD_ENTRY_FIELDS = {"keys", "content", "extensions", "enabled", "insertion_order", "case_sensitive", "name",
                     "priority", "id", "comment", "selective", "secondary_keys", "constant", "position", "use_regex"}


def _book_entry(book: Lorebook, item: Mapping[str, Any]) -> LoreEntry:
    for k in item:
        if k not in CARD_ENTRY_FIELDS:
            book.unknown[k] += 1
    if item.get("secondary_keys"):
        book.ignored["secondary keys"] += 1
    if item.get("use_regex"):
        book.ignored["regular-expression keys"] += 1
    e = LoreEntry(name=str(item.get("name") or item.get("comment") or "").strip(),
                  keys=[] if item.get("use_regex") else _strings(item.get("keys")),
                  content=str(item.get("content") or ""), constant=bool(item.get("constant")),
                  order=_number(item.get("insertion_order"), _number(item.get("priority"))),
                  enabled=item.get("enabled", True) is not False, secondary=bool(item.get("secondary_keys")))
    return _with_ours(e, _ours(item))


CARD_FIELDS = {"name", "description", "personality", "scenario", "first_mes", "mes_example", "creator_notes",
               "system_prompt", "post_history_instructions", "alternate_greetings", "character_book", "tags",
               "creator", "character_version", "extensions", "nickname", "creator_notes_multilingual", "source",
               "group_only_greetings", "creation_date", "modification_date", "assets", "avatar", "talkativeness",
               "fav", "chat", "create_date", "spec", "spec_version", "data"}
CARD_IGNORED = {"first_mes": "greetings", "alternate_greetings": "greetings", "mes_example": "example dialogue",
                "system_prompt": "system prompt", "post_history_instructions": "post-history instructions",
                "scenario": "scenario"}


def _card(doc: Mapping[str, Any]) -> Lorebook:
    data = doc["data"] if isinstance(doc.get("data"), dict) else doc  # V2/V3 nest the card in "data"; V1 does not
    book = Lorebook("card", name=str(data.get("name") or "").strip(), character=str(data.get("name") or "").strip())
    for k in data:
        if k not in CARD_FIELDS:
            book.unknown[k] += 1
    for k, label in CARD_IGNORED.items():
        if data.get(k):
            book.ignored[label] += 1
    ours = _ours(data)
    if book.character and not ours.get("story_card"):
        text = "\n".join(str(data.get(k) or "").strip() for k in ("description", "personality") if data.get(k))
        nickname = str(data.get("nickname") or "").strip()
        e = LoreEntry(name=book.character, keys=[book.character] + ([nickname] if nickname else []), content=text,
                      constant=True, order=float("inf"), kind="character")
        if "pinned" in ours:
            e.constant = bool(ours["pinned"])
        book.entries.append(_with_ours(e, ours))
    character_book = data.get("character_book")
    if isinstance(character_book, dict):
        book.name = str(character_book.get("name") or book.name)
        for item in character_book.get("entries") or []:
            if isinstance(item, dict):
                book.entries.append(_book_entry(book, item))
            else:
                book.unknown["(an entry that is not an object)"] += 1
    return book


NOVELAI_FIELDS = {"text", "contextConfig", "lastUpdatedAt", "displayName", "id", "keys", "searchRange", "enabled",
                  "forceActivation", "keyRelative", "nonStoryActivatable", "category", "loreBiasGroups",
                  "advancedConditions", "hidden"}


def _novelai(doc: Mapping[str, Any]) -> Lorebook:
    book = Lorebook("novelai")
    categories = {str(c.get("id")): str(c.get("name") or "")
                  for c in doc.get("categories") or [] if isinstance(c, dict)}
    for item in doc.get("entries") or []:
        if not isinstance(item, dict):
            book.unknown["(an entry that is not an object)"] += 1
            continue
        for k in item:
            if k not in NOVELAI_FIELDS:
                book.unknown[k] += 1
        if any(g.get("phrases") for g in item.get("loreBiasGroups") or [] if isinstance(g, dict)):
            book.ignored["phrase bias"] += 1
        config = item.get("contextConfig") if isinstance(item.get("contextConfig"), dict) else {}
        category = categories.get(str(item.get("category")), "")
        e = LoreEntry(name=str(item.get("displayName") or "").strip(), keys=_strings(item.get("keys")),
                      content=str(item.get("text") or ""), constant=bool(item.get("forceActivation")),
                      order=_number(config.get("budgetPriority")), enabled=item.get("enabled", True) is not False,
                      kind=_KIND_WORDS.get(category.strip().casefold()))
        book.entries.append(e)
    return book


# -- into the bible ------------------------------------------------------------------------------

_SENTENCE = re.compile(r"[^.!?。！？]+(?:[.!?。！？]+[\"'”’)\]]*|$)")
_STATUS = re.compile(r"(?i)status\s*[:：]\s*(.{1,40})")


def facts_of(content: str, character: str = "") -> tuple[list[str], str | None, bool]:
    """An entry's text as (facts, status, cut): one fact a line when its lines fit, otherwise its sentences
    packed into the bible's facts; ``cut`` says that text was left out to fit."""
    text = content.replace("{{char}}", character or "{{char}}").replace("<START>", "")
    lines = [ln.strip(" \t-•*") for ln in text.replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln]
    status = None
    if lines and (m := _STATUS.fullmatch(lines[-1])):
        status, lines = m.group(1).strip(), lines[:-1]
    if len(lines) <= canon.MAX_FACTS and all(len(ln) <= canon.MAX_FACT_CHARS for ln in lines):
        return lines, status, False
    pieces: list[str] = []
    for ln in lines:
        for sentence in (s.strip() for s in _SENTENCE.findall(ln)):
            while len(sentence) > canon.MAX_FACT_CHARS:  # one very long sentence: cut at a space
                cut = sentence.rfind(" ", 0, canon.MAX_FACT_CHARS) if " " in sentence[:canon.MAX_FACT_CHARS] else -1
                cut = cut if cut > 0 else canon.MAX_FACT_CHARS
                pieces.append(sentence[:cut].strip())
                sentence = sentence[cut:].strip()
            if sentence:
                pieces.append(sentence)
    facts: list[str] = []
    cut = False
    for piece in pieces:
        if facts and len(facts[-1]) + 1 + len(piece) <= canon.MAX_FACT_CHARS:
            facts[-1] += " " + piece
        elif len(facts) < canon.MAX_FACTS:
            facts.append(piece)
        else:
            cut = True
            break
    return facts, status, cut


def plan_import(book: Lorebook, current: canon.Bible, *, default_kind: str = "character") -> ImportPlan:
    """The writer's changes that bring ``book`` into ``current``, all valid together (checked as the loom
    will check them), and what was left out and why. Entries are taken highest priority first, at most
    ``MAX_IMPORT_ENTRIES``; an entry already in the bible is updated."""
    if default_kind not in canon.KINDS:
        raise InputError(f"unknown kind {default_kind!r} (use {', '.join(canon.KINDS)})")
    plan = ImportPlan(changes=[])
    # every name and alias in the bible and in what is added, for constant-time clash checks
    owner: dict[str, str] = {}
    for k, e in current.items():
        for n in e.names():
            owner.setdefault(canon.key(n), k)
    size = len(current)
    cut = dropped_aliases = 0
    ordered = sorted(enumerate(book.entries), key=lambda ie: (-ie[1].order, ie[0]))
    seen: set[str] = set()
    for n, (_, e) in enumerate(ordered):
        name = (e.name or next(iter(e.keys), "")).strip()
        if len(name) > canon.MAX_NAME_CHARS:
            name = name[: canon.MAX_NAME_CHARS].rsplit(" ", 1)[0].strip() or name[: canon.MAX_NAME_CHARS]
        k = canon.key(name)
        label = name or f"entry {n + 1}"
        if not e.enabled:
            plan.skipped.append(f"{label}: disabled in the file")
            continue
        if not k:
            plan.skipped.append(f"{label}: no name or key")
            continue
        if all(w in canon.COMMON_WORDS for w in k.split()):
            plan.skipped.append(f"{label}: the name is too common a word")
            continue
        if k in seen:
            plan.skipped.append(f"{label}: the same name twice in the file (the first, by priority, was kept)")
            continue
        if len(plan.changes) >= MAX_IMPORT_ENTRIES:
            plan.skipped.append(f"{label}: over the limit of {MAX_IMPORT_ENTRIES:,} entries an import")
            continue
        existing = owner.get(k)
        if existing is not None and existing != k:
            other = current[existing].name if existing in current else existing
            plan.skipped.append(f"{label}: the name is an alias of {other!r}")
            continue
        update = existing == k and k in current
        if not update and size >= canon.MAX_ENTRIES:
            plan.skipped.append(f"{label}: the bible is full ({canon.MAX_ENTRIES:,} entries)")
            continue
        aliases: list[str] = []
        alias_keys = {k}
        for a in (e.aliases if e.aliases is not None else e.keys):
            a = a.strip()[: canon.MAX_NAME_CHARS]
            ak = canon.key(a)
            if not ak or ak in alias_keys:
                continue
            if canon.alias_problem(a) or owner.get(ak, k) != k or len(aliases) >= canon.MAX_ALIASES:
                dropped_aliases += 1
                continue
            aliases.append(a)
            alias_keys.add(ak)
        if e.facts is not None:
            facts = [f[: canon.MAX_FACT_CHARS] for f in e.facts if f.strip()][: canon.MAX_FACTS]
            status, was_cut = e.status, len(e.facts) > canon.MAX_FACTS
        else:
            facts, status, was_cut = facts_of(e.content, book.character)
            status = e.status if e.status is not None else status
        cut += was_cut
        kind = e.kind if e.kind in canon.KINDS else default_kind
        status = (status or "").strip()[: canon.MAX_STATUS_CHARS]
        if update:
            change = canon.Change("update", current[k].name, kind=kind, aliases=tuple(aliases), facts=tuple(facts),
                                  status=status, pinned=e.constant, reason="imported from a lorebook")
            if not facts:  # an update may not empty the facts: keep the bible's
                change = canon.Change("update", current[k].name, kind=kind, aliases=tuple(aliases), status=status,
                                      pinned=e.constant, reason="imported from a lorebook")
            plan.updated += 1
        else:
            change = canon.Change("add", name, kind=kind, aliases=tuple(aliases), facts=tuple(facts), status=status,
                                  pinned=e.constant, reason="imported from a lorebook")
            plan.added += 1
            size += 1
        plan.changes.append(change)
        seen.add(k)
        for ak in alias_keys:
            owner[ak] = k
    if dropped_aliases:
        plan.notes.append(f"{dropped_aliases} keys could not be aliases (too common, too short, a regular "
                          f"expression, naming another entry, or past {canon.MAX_ALIASES} an entry)")
    if cut:
        plan.notes.append(f"{cut} entries' text was cut to the bible's {canon.MAX_FACTS} facts of "
                          f"{canon.MAX_FACT_CHARS} characters")
    if any(e.secondary for e in book.entries):
        plan.notes.append("secondary keys are not used: an entry is shown when its name or an alias is named")
    return plan


# -- out of the bible ----------------------------------------------------------------------------


def _content(e: canon.Entry) -> str:
    return "\n".join([*e.facts, *([f"Status: {e.status}"] if e.status else [])])


def _our_fields(e: canon.Entry) -> dict[str, Any]:
    return {"kind": e.kind, "status": e.status, "aliases": list(e.aliases), "facts": list(e.facts)}


def to_world_info(entries: Iterable[canon.Entry], name: str = "") -> dict[str, Any]:
    """SillyTavern World Info: every field of its entry template, the bible's order as descending ``order``."""
    entries = list(entries)
    out: dict[str, Any] = {}
    for i, e in enumerate(entries):
        out[str(i)] = {
            "uid": i, "key": list(e.names()), "keysecondary": [], "comment": e.name, "content": _content(e),
            "constant": e.pinned, "vectorized": False, "selective": True, "selectiveLogic": 0, "addMemo": True,
            "order": 100 + len(entries) - i, "position": 0, "disable": False, "excludeRecursion": False,
            "preventRecursion": False, "delayUntilRecursion": False, "probability": 100, "useProbability": True,
            "depth": 4, "group": "", "groupOverride": False, "groupWeight": 100, "scanDepth": None,
            "caseSensitive": None, "matchWholeWords": None, "useGroupScoring": None, "automationId": "", "role": 0,
            "sticky": None, "cooldown": None, "delay": None, "displayIndex": i,
            "extensions": {EXTENSION: _our_fields(e)},
        }
    return {"name": name, "entries": out} if name else {"entries": out}


def _book(entries: list[canon.Entry], name: str) -> dict[str, Any]:
    return {
        "name": name, "description": "", "scan_depth": 4, "token_budget": 1024, "recursive_scanning": False,
        "extensions": {},
        "entries": [{
            "keys": list(e.names()), "content": _content(e), "extensions": {EXTENSION: _our_fields(e)},
            "enabled": True, "insertion_order": 100 + len(entries) - i, "case_sensitive": False, "use_regex": False,
            "constant": e.pinned, "name": e.name, "priority": 100 + len(entries) - i, "id": i, "comment": e.name,
            "selective": False, "secondary_keys": [], "position": "before_char",
        } for i, e in enumerate(entries)],
    }


def to_card(entries: Iterable[canon.Entry], *, story_title: str, story_summary: str = "", character: str = "",
            creator: str = "") -> dict[str, Any]:
    """A V3 character card (its ``data`` is also a valid V2 card's). With ``character`` the card is that
    entry's and the book holds the others; without, the card stands for the story and holds them all."""
    entries = list(entries)
    chosen = canon.find({canon.key(e.name): e for e in entries}, character) if character else None
    if character and chosen is None:
        raise InputError(f"no bible entry called {character!r} to make a card of")
    rest = [e for e in entries if e is not chosen]
    if chosen:
        ours = {**_our_fields(chosen), "pinned": chosen.pinned}
        name, description = chosen.name, _content(chosen)
    else:
        ours = {"story_card": True}
        name, description = story_title, story_summary
    data = {
        "name": name, "description": description, "personality": "", "scenario": "", "first_mes": "",
        "mes_example": "", "creator_notes": f"Exported from the story bible of {story_title!r} by recurrentgpt.",
        "system_prompt": "", "post_history_instructions": "", "alternate_greetings": [], "group_only_greetings": [],
        "tags": [], "creator": creator, "character_version": "", "extensions": {EXTENSION: ours},
        "character_book": _book(rest, f"{story_title} bible"),
    }
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": data}


def to_novelai(entries: Iterable[canon.Entry]) -> dict[str, Any]:
    """A NovelAI lorebook (version 5): one category per kind, ``budgetPriority`` from the bible's order."""
    import uuid

    entries = list(entries)
    kinds = [k for k in canon.KINDS if any(e.kind == k for e in entries)]
    category_id = {k: str(uuid.uuid5(uuid.NAMESPACE_URL, f"recurrentgpt:{k}")) for k in kinds}
    return {
        "lorebookVersion": 5,
        "entries": [{
            "text": _content(e), "contextConfig": {
                "prefix": "", "suffix": "\n", "tokenBudget": 1, "reservedTokens": 0,
                "budgetPriority": 400 + len(entries) - i, "trimDirection": "trimBottom", "insertionType": "newline",
                "maximumTrimType": "sentence", "insertionPosition": -1},
            "lastUpdatedAt": 0, "displayName": e.name,
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"recurrentgpt:{i}:{e.name}")),
            "keys": list(e.names()), "searchRange": 1000, "enabled": True, "forceActivation": e.pinned,
            "keyRelative": False, "nonStoryActivatable": False, "category": category_id[e.kind], "loreBiasGroups": [],
        } for i, e in enumerate(entries)],
        "settings": {"orderByKeyLocations": False},
        "categories": [{"name": k, "id": category_id[k], "enabled": True, "createSubcontext": False,
                        "subcontextSettings": {}, "useCategoryDefaults": False, "categoryDefaults": {},
                        "categoryBiasGroups": []} for k in kinds],
    }


# -- PNG cards -------------------------------------------------------------------------------------


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def card_png(card: Mapping[str, Any], width: int = 400, height: int = 600) -> bytes:
    """A PNG card: a plain image with the card in a ``ccv3`` chunk and, for V2 readers, a ``chara`` chunk
    (the same data marked V2), both base64 in tEXt chunks as the specifications say."""
    v2 = {**card, "spec": "chara_card_v2", "spec_version": "2.0"}
    row = b"\0" + bytes((236, 228, 212)) * width  # filter byte, then a parchment-coloured row
    pixels = zlib.compress(row * height, 9)
    chunks = [
        _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
        _chunk(b"tEXt", b"chara\0" + base64.b64encode(json.dumps(v2, ensure_ascii=False).encode("utf-8"))),
        _chunk(b"tEXt", b"ccv3\0" + base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8"))),
        _chunk(b"IDAT", pixels),
        _chunk(b"IEND", b""),
    ]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def export_bytes(fmt: str, entries: Iterable[canon.Entry], *, story_title: str, story_summary: str = "",
                 character: str = "", creator: str = "", png: bool = False) -> bytes:
    """A bible as a file: ``st`` World Info JSON, ``card`` (JSON, or PNG with ``png``), ``novelai``."""
    if fmt not in FORMATS:
        raise InputError(f"unknown lorebook format {fmt!r} (use {', '.join(FORMATS)})")
    if character and fmt != "card":
        raise InputError("--name makes a character card: use it with --format card")
    if png and fmt != "card":
        raise InputError("only a character card can be a PNG (--format card)")
    if fmt == "st":
        doc = to_world_info(entries, f"{story_title} bible")
    elif fmt == "card":
        doc = to_card(entries, story_title=story_title, story_summary=story_summary, character=character,
                      creator=creator)
        if png:
            return card_png(doc)
    else:
        doc = to_novelai(entries)
    return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")
