"""A deterministic word-bank story generator: varied, prose-like filler of any length, no downloads.

``paragraph(i)`` depends only on ``(seed, i)``, so paragraph 734,201 of a million-paragraph story can be
made without making the ones before it. The text reads like a (dull) novel: recurring characters,
places and objects, a few hundred words of vocabulary, sentence templates of different shapes. It is
not meant to be good prose; it is meant to give an embedder and BM25 realistic, overlapping material
(the same captains, wells and chapels come back again and again), so retrieval has distractors.

The planted facts of the needle benchmark (bench/needle.py) share common words with the bank on
purpose (captain, doctor, widow, chapel, key, bell, hid, buried, …: near misses), but none of their
names of people and places is a word of the bank (``vocabulary()``), so only a fact's own paragraph
carries its names; needle.py refuses to run otherwise and tests/core/test_bench_wordbank.py checks it.
"""

from __future__ import annotations

import random

FIRST = (
    "Anna Bertil Clara Dmitri Elena Farid Greta Hugo Ines Jonas Kaia Lars Mira Nils Olga Pavel Quinn Rosa "
    "Stefan Tilde Ugo Vera Willem Xenia Yusuf Zofia Arne Bea Cyril Dora Emil Fiona Gideon Hanna Ivo Jette "
    "Karl Lena Marek Nora Oskar Petra Rune Sofia Tomas Ulla Viktor Wanda"
).split()
LAST = (
    "Alder Brandt Corwin Dahl Ekberg Falk Grieve Holm Ilves Jarl Kestrel Lind Morrow Nyberg Orme Pike "
    "Quist Rowe Strand Thorne Underhill Vance Wick Yarrow Zell Ashby Bell Crane Dunmore Eliot Frost"
).split()
ROLE = "captain doctor baker smith widow priest clerk miller sailor soldier teacher farmer merchant guard judge".split()
PLACE = (
    "harbor|market square|old mill|lighthouse|chapel|orchard|bridge|tavern|library|station|cellar|attic|"
    "quarry|shipyard|cemetery|greenhouse|bakery|forge|courthouse|schoolhouse|ferry landing|boathouse|"
    "watchtower|granary|monastery|vineyard|canal lock|pier|cannery|sawmill|ropewalk|customs house"
).split("|")
OBJECT = (
    "lantern|letter|key|ledger|compass|rope|knife|map|photograph|ring|coat|basket|violin|clock|bottle|"
    "bell|book|kettle|blanket|hammer|candle|box|coin|medal|scarf|pipe|telescope|diary|shovel|umbrella|"
    "satchel|pocket watch|glove|chain|whistle|mirror"
).split("|")
ADJ = (
    "old quiet narrow bright cold warm heavy broken silent distant crooked wet dusty pale shuttered "
    "familiar strange empty crowded steep tired careful slow restless gentle bitter"
).split()
WEATHER = (
    "rain fog wind snow sleet drizzle frost heat thunder mist".split()
)
TIME = (
    "at dawn|in the evening|before noon|after supper|late at night|on Sunday|in the spring|during the storm|"
    "at the turn of the tide|when the bells rang|the next morning|an hour later"
).split("|")
VERB_PAST = (
    "carried opened mended counted buried sold borrowed found lost polished wrapped dropped hid examined "
    "returned painted weighed locked"
).split()
FEEL = "worried hopeful angry ashamed curious relieved afraid stubborn lonely amused suspicious grateful".split()
TOPIC = (
    "the price of grain|the new road|the fishing fleet|the broken dam|an old debt|the election|a wedding|"
    "the harvest|a missing dog|the strike at the mill|the winter stores|a quarrel between brothers|"
    "the school play|a ship long overdue|the railway survey|a fever in the valley"
).split("|")

TEMPLATES = [
    "{name} {verb} the {adj} {obj} near the {place} {time}.",
    "The {weather} had not stopped for three days, and the {place} smelled of {obj2} smoke and wet stone.",
    "{name} felt {feel} when {name2} spoke about {topic}.",
    "Nobody in town could say who had left the {obj} at the {place}.",
    "{time_cap}, {name} walked from the {place} to the {place2} without looking back.",
    "The {role} said that {topic} would ruin them all, but {name} only laughed.",
    "There was a {adj} {obj} on the table, and beside it a note in {name2}'s handwriting.",
    "{name} and {name2} argued about {topic} until the {weather} drove everyone inside.",
    "\"We should never have come back to the {place},\" said {name}.",
    "{name2} kept the {obj} in a drawer and never explained why.",
    "The {adj} {place} was where the {role} used to meet {name} {time}.",
    "Someone had {verb} the {obj2}, and {name} was {feel} about it for days.",
    "In the {weather}, the {place} looked {adj} and farther away than it was.",
    "{name} remembered the {role} who had taught them to use a {obj}.",
    "Talk at the {place} was all about {topic} and the {adj} {role} from the coast.",
    "{name} wrote a long letter about {topic} and burned it {time}.",
]

PLAN_TEMPLATE = ("{name} goes to the {place} to ask about {topic}. "
                 "They find a {adj} {obj} and must decide what to do with it.")

STOPWORDS = set(
    "a an and are as at be but by for from has have he her his in into is it its of on or she that the their "
    "them then there they this to was were will with you your what when where which who why how not no".split()
)


def name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def sentence(rng: random.Random) -> str:
    t = rng.choice(TEMPLATES)
    time_phrase = rng.choice(TIME)
    return t.format(
        name=name(rng),
        name2=rng.choice(FIRST),
        role=rng.choice(ROLE),
        place=rng.choice(PLACE),
        place2=rng.choice(PLACE),
        obj=rng.choice(OBJECT),
        obj2=rng.choice(OBJECT),
        adj=rng.choice(ADJ),
        weather=rng.choice(WEATHER),
        time=time_phrase,
        time_cap=time_phrase[0].upper() + time_phrase[1:],
        verb=rng.choice(VERB_PAST),
        feel=rng.choice(FEEL),
        topic=rng.choice(TOPIC),
    )


def paragraph(i: int, sentences: int = 8, seed: int = 0) -> str:
    """Paragraph ``i`` of the story ``seed``: ``sentences`` sentences, about 13 words each."""
    rng = random.Random(seed * 1_000_003 + i)
    return " ".join(sentence(rng) for _ in range(sentences))


def plan(i: int, seed: int = 0) -> str:
    """A plan-like query: two sentences about what the next paragraph should do."""
    rng = random.Random(seed * 1_000_003 + 10_000_000 + i)
    return PLAN_TEMPLATE.format(name=name(rng), place=rng.choice(PLACE), topic=rng.choice(TOPIC), adj=rng.choice(ADJ),
                                obj=rng.choice(OBJECT))


def vocabulary() -> set[str]:
    """Every word (lower case) the bank can put into a paragraph or a plan: its lists and its templates."""
    import re

    parts = [FIRST, LAST, ROLE, PLACE, OBJECT, ADJ, WEATHER, TIME, VERB_PAST, FEEL, TOPIC, TEMPLATES, [PLAN_TEMPLATE]]
    text = " ".join(" ".join(part) for part in parts)
    return set(re.findall(r"[a-z]+", re.sub(r"\{\w+\}", " ", text).lower()))


def content_words(text: str) -> set[str]:
    """Lower-case words of four letters or more that are not stopwords (for overlap checks)."""
    import re

    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 4 and w not in STOPWORDS}
