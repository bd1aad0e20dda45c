"""The held-out continuity set: real Austen paragraphs, clean or with one planted contradiction.

    apt-get install --no-install-recommends r-cran-janeaustenr   # the novels (once, for --build only)
    python bench/continuity_set.py --build     # bench/continuity_source.py + novels -> bench/data/continuity_set.json
    python bench/continuity_set.py             # what the committed set holds

The benchmark (bench/continuity.py) reads only the committed JSON: nothing is fetched or rebuilt when it
runs. --build reads the six novels from the Debian package r-cran-janeaustenr through Rscript, cuts
each at blank lines (short paragraphs merged with the next until one has 50+ words, never across a
chapter heading), applies the edits written in bench/continuity_source.py and checks each one (the text
to replace is there exactly once). The procedure a reader followed is bench/notes/continuity_set.md.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SET_FILE = HERE / "data" / "continuity_set.json"
MIN_WORDS = 50
HEADING = re.compile(r"^(CHAPTER|Chapter|VOLUME|Volume)\b|^(PRIDE AND PREJUDICE|SENSE AND SENSIBILITY|NORTHANGER ABBEY|"
                     r"EMMA|PERSUASION|MANSFIELD PARK)$")


def cut(text: str) -> list[str]:
    """The novel's paragraphs: blank-line blocks, short ones merged with the next, never across a heading."""
    paras: list[str] = []
    current: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        t = " ".join(block.split())
        if not t:
            continue
        if HEADING.match(t) or (len(t.split()) < 3 and not t.endswith(('"', ".", "!", "?"))):
            if current:
                paras.append(" ".join(current))
                current = []
            continue
        current.append(t)
        if len(" ".join(current).split()) >= MIN_WORDS:
            paras.append(" ".join(current))
            current = []
    if current:
        paras.append(" ".join(current))
    return paras


def novel(name: str) -> list[str]:
    try:
        out = subprocess.run(["Rscript", "-e", f"cat(janeaustenr::{name}, sep='\\n')"], capture_output=True,
                             text=True, check=True, timeout=120)
    except FileNotFoundError:
        sys.exit("error: Rscript not found: apt-get install --no-install-recommends r-cran-janeaustenr")
    except subprocess.CalledProcessError as e:
        sys.exit(f"error: janeaustenr::{name}: {e.stderr.strip()[:200]}")
    return cut(out.stdout)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build() -> dict:
    sys.path.insert(0, str(HERE))
    import continuity_source as source

    books, items, problems = {}, [], []
    for book, spec in source.BOOKS.items():
        paras = novel(book)
        books[f"en/{book}"] = {"lang": "en", "book": book, "split": spec["split"], "canon": spec["canon"]}
        for it in spec["items"]:
            original = paras[it["para"]]
            text, planted = original, None
            if it["kind"]:
                if it["replace"]:
                    old, new = it["replace"]
                    if original.count(old) != 1:
                        problems.append(f"{book} {it['para']}: {old[:50]!r} is not there exactly once")
                        continue
                    text = original.replace(old, new)
                else:
                    new = it["append"]
                    text = f"{original} {new}"
                planted = {"kind": it["kind"], "entry": it["entry"], "text": new}
            items.append({"id": f"en/{book}/{it['para']}", "lang": "en", "book": f"en/{book}", "split": spec["split"],
                          "para": it["para"], "source_sha256": sha(original), "text": text, "planted": planted})
    for book, spec in source.ZH.items():
        books[f"zh/{book}"] = {"lang": "zh", "book": book, "split": spec["split"], "canon": spec["canon"]}
        for it in spec["items"]:
            text, planted = it["text"], None
            if it["kind"]:
                text = text + it["append"]
                planted = {"kind": it["kind"], "entry": it["entry"], "text": it["append"]}
            items.append({"id": f"zh/{book}/{it['para']}", "lang": "zh", "book": f"zh/{book}", "split": spec["split"],
                          "para": it["para"], "text": text, "planted": planted})
    ids = collections.Counter(i["id"] for i in items)
    problems += [f"{k} twice" for k, n in ids.items() if n > 1]
    for it in items:  # a clean paragraph must name an entry of its book, or it tests nothing
        names = [n for e in books[it["book"]]["canon"] for n in (e["name"], *e["aliases"])]
        if not any(n in it["text"] for n in names):
            problems.append(f"{it['id']}: names no entry of its canon")
        if it["planted"] and it["planted"]["entry"] not in {e["name"] for e in books[it["book"]]["canon"]}:
            problems.append(f"{it['id']}: planted entry {it['planted']['entry']!r} is not in the canon")
    if problems:
        sys.exit("error: " + "\n  ".join(problems))
    return {"about": "Held-out continuity set; procedure in bench/notes/continuity_set.md", "books": books,
            "items": items}


def load(path: Path = SET_FILE) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def summary(data: dict) -> str:
    rows = collections.Counter()
    for it in data["items"]:
        rows[(it["lang"], it["split"], it["planted"]["kind"] if it["planted"] else "clean")] += 1
    return "\n".join(f"{lang} {split:4} {kind:10} {n}" for (lang, split, kind), n in sorted(rows.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", action="store_true", help="rebuild bench/data/continuity_set.json from the novels")
    args = ap.parse_args()
    if args.build:
        data = build()
        SET_FILE.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(summary(load()))


if __name__ == "__main__":
    main()
