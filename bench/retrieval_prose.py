"""Does the long-term memory find what the story needs, on real prose?

The text is Jane Austen's *Emma* (1815, public domain), read from the Debian package r-cran-janeaustenr
(`janeaustenr::emma`, through Rscript): nobody on the project wrote it. It is cut at blank lines into
paragraphs; short ones (dialogue) are merged with the next until a paragraph has 80+ words, never across a
chapter: 1,093 paragraphs of ~144 words, about the size of the paragraphs the writer produces.

42 targets spread evenly over the novel (bench/data/emma_targets.json) were read by a person, who wrote two
plans for each, as a novelist would write the plan of a later paragraph that needs the target:

    paraphrase  names nobody and shares no content word with the target (checked below with Snowball stems)
    by name     names the people (and places) involved; shares nothing else with the target

From the end of the novel, the long-term memory (SQLiteStore + LongTermMemory) recalls the top 5 for each plan.
R@k = the target is among the first k; "±1" beside it = the target or a paragraph next to it is (a neighbour
often carries the same scene). Each mode's recall p50 is timed warm over the same 84 queries.

The defaults were chosen on Emma. `--novel persuasion` runs the held-out set, written afterwards by the same rules:
*Persuasion* (same package and cutting, 558 paragraphs), 20 targets (bench/data/persuasion_targets.json).
Modes "+ query expansion" add to each plan the sentences of a short-term memory (the targets file's
`short_memory`: what it might hold at the end of the novel, where every recall is made) that name its people.

    apt-get install --no-install-recommends r-cran-janeaustenr   # the text (once)
    pip install snowballstemmer                                  # the stem check (the dev extra has it)
    flock /tmp/heavy.lock nice -n 10 .venv/bin/python bench/retrieval_prose.py   # ~2 min after the first run
    ... bench/retrieval_prose.py --novel persuasion --embedder mpnet             # the held-out set, plus mpnet

Passage embeddings are cached in $RECURRENTGPT_BENCH_WORK/embeddings (keyed by embedder and text); queries are
embedded live so the latencies are real.

Synopses (issue 12, item 2): with ``--synopses`` the script measures, instead, the paragraphs that
bench/data/emma_synopses.json has synopses for (written by a model through ``Loom.write_synopses``, see
bench/emma_synopses.py: the targets and a window around each when the whole novel is too slow), as a library of
those paragraphs only, each mode without and with the synopses indexed beside the paragraphs. Only that subset:
synopses on some paragraphs of a larger library would favour exactly those.

    flock /tmp/heavy.lock nice -n 10 .venv/bin/python bench/retrieval_prose.py --synopses --out retrieval_prose_synopses
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _common import HERE, WORK, median, ms, table, wait_for_quiet, write_results

SYNOPSES_FILE = HERE / "data" / "emma_synopses.json"
MIN_WORDS = 80
KS = (1, 2, 5)
# the chunk size every embedder had, and whole paragraphs (EmbeddingGemma reads 2,048 tokens)
GEMMA_CHUNK_WORDS = (150, 400)


@dataclass(frozen=True)
class Novel:
    """One book of janeaustenr and its person-read targets."""

    name: str  # the janeaustenr object (janeaustenr::NAME)
    title: str
    heading: re.Pattern  # title-page and chapter lines, dropped when cutting

    @property
    def targets_file(self) -> Path:
        return HERE / "data" / f"{self.name}_targets.json"


NOVELS = {
    # Emma chose the defaults (the tuned set); Persuasion was written afterwards to confirm them (held out)
    "emma": Novel("emma", "Emma", re.compile(r"(VOLUME|CHAPTER) [IVXLC]+\.?|EMMA|By Jane Austen")),
    "persuasion": Novel("persuasion", "Persuasion",
                        re.compile(r"Chapter \d+|Persuasion|by|Jane Austen|\(1818\)|Finis")),
}
# words that carry no content: a shared one does not make a paraphrase lexical
STOPWORDS = set(
    """a an and are as at be but by for from has have he her his in into is it its of on or she that the their
    them then there they this to was were will with you your what when where which who why how not no i me my
    we our us him himself herself itself so if than too very can could would should shall may might must do
    does did done been being am all any some such only own same other one two out up down over under again
    further once here more most off each few both just now also about after before while because until
    against between through during above below nor s t""".split()
)


def load_novel(novel: Novel) -> str:
    """The text of the novel from the installed Debian package (no network)."""
    try:
        out = subprocess.run(["Rscript", "-e", f"cat(janeaustenr::{novel.name}, sep='\\n')"], capture_output=True,
                             text=True, timeout=120)
    except FileNotFoundError:
        sys.exit("error: Rscript not found: apt-get install --no-install-recommends r-cran-janeaustenr")
    if out.returncode != 0 or len(out.stdout) < 100_000:
        sys.exit(f"error: janeaustenr::{novel.name} is not installed: "
                 "apt-get install --no-install-recommends r-cran-janeaustenr")
    return out.stdout


def cut_paragraphs(text: str, heading: re.Pattern = NOVELS["emma"].heading, min_words: int = MIN_WORDS) -> list[str]:
    """Blank-line paragraphs; a short one is merged with the next until min_words, never across a chapter."""
    out: list[str] = []
    current: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        block = " ".join(block.split())
        if not block:
            continue
        if heading.fullmatch(block):
            if current:
                out.append(" ".join(current))
                current = []
            continue
        current.append(block)
        if len(" ".join(current).split()) >= min_words:
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out


def stems(text: str) -> set[str]:
    import snowballstemmer

    stemmer = snowballstemmer.stemmer("english")
    words = re.findall(r"[a-z]+", text.lower().replace("_", " "))
    return {stemmer.stemWord(w) for w in words if w not in STOPWORDS and len(w) > 1}


def load_targets(paragraphs: list[str], novel: Novel = NOVELS["emma"]) -> list[dict]:
    """The targets, checked: each still opens its paragraph, and the plans share no stem they should not."""
    targets = json.loads(novel.targets_file.read_text())["targets"]
    for t in targets:
        text = paragraphs[t["paragraph"]]
        assert text.startswith(t["opens"]), f"paragraph {t['paragraph']} moved: {text[:60]!r}"
        words = stems(text)
        shared = stems(t["paraphrase"]) & words
        assert not shared, f"paragraph {t['paragraph']}: the paraphrase repeats {sorted(shared)}"
        extra = (stems(t["by_name"]) & words) - stems(" ".join(t["names"]))
        assert not extra, f"paragraph {t['paragraph']}: the by-name plan repeats {sorted(extra)}"
    return targets


class CachedEmbedder:
    """An embedder whose passage vectors are cached on disk (keyed by its name and the text); queries go
    to the real embedder every time, so recall latencies include the query embedding."""

    caches: dict[Path, dict[str, np.ndarray]] = {}  # one per file: variants of one embedder share their passages

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.max_words = inner.max_words
        self.path = WORK / "embeddings" / (re.sub(r"[^\w.-]", "_", inner.name) + ".npz")
        if self.path not in self.caches:
            data = np.load(self.path) if self.path.exists() else None
            self.caches[self.path] = {k: data[k] for k in data.files} if data is not None else {}
        self.cache = self.caches[self.path]
        self.embedded = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        if len(texts) == 1:  # a query (the memory embeds passages in batches): always live
            return self.inner.embed(texts)
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        todo = [i for i, k in enumerate(keys) if k not in self.cache]
        if todo:
            fresh = self.inner.embed([texts[i] for i in todo])
            for i, row in zip(todo, fresh):
                self.cache[keys[i]] = row
            self.embedded += len(todo)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(self.path, **self.cache)
        return np.stack([self.cache[k] for k in keys]).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        query = getattr(self.inner, "embed_query", None)
        return query(text) if query else self.inner.embed([text])[0]


@dataclass
class Mode:
    label: str
    retrieval: str
    embedder: str = "minilm"
    chunk_words: int | None = None
    options: dict = field(default_factory=dict)
    expand: bool = False  # the query is the plan plus the short-term memory's sentences about its people
    synopses: bool = False  # index the cached synopses beside the paragraphs
    max_words: int | None = None  # the embedder reads chunks of up to this many words (None: its own max_words)
    query_int8: bool | None = None  # embed queries with an int8 copy of the model (None: the embedder's default)


TITLES = {"mr", "mrs", "miss", "sir", "lady", "captain", "colonel", "admiral", "dr"}


def expand_query(plan: str, short_memory: str) -> str:
    """The plan, then each sentence of the short-term memory that names one of the plan's people (a capitalised
    word that is not a stop word or a title)."""
    names = {w for w in re.findall(r"\b[A-Z][a-z]+", plan) if w.lower() not in STOPWORDS | TITLES}
    sentences = re.split(r"(?<!\bMr\.)(?<!\bMrs\.)(?<!\bDr\.)(?<=[.!?])\s+", short_memory)
    about = [s for s in sentences if names & set(re.findall(r"\b[A-Z][a-z]+", s))]
    return " ".join([plan, *about])


def as_embedder(cached: CachedEmbedder, words: int | None = None):
    """The cache dressed as the project's Embedder (LongTermMemory checks nothing else); ``words``: another
    longest chunk than the embedder's own (each mode has a fresh library: no vectors are mixed)."""
    from recurrentgpt.embeddings.base import Embedder

    class Dressed(Embedder):
        name = cached.name
        max_words = words or cached.max_words

        def embed(self, texts):
            return cached.embed(texts)

        def embed_query(self, text):
            return cached.embed_query(text)

    return Dressed()


def build_library(paragraphs: list[str], indices: list[int] | None = None, synopses: dict[int, str] | None = None):
    """A library of the novel (or of the paragraphs ``indices``, in order), as one story; node depth i holds
    paragraph ``indices[i]``, with its synopsis when ``synopses`` has one."""
    from recurrentgpt.loom import new_id
    from recurrentgpt.store import SQLiteStore
    from recurrentgpt.story import Node, Settings, StoryInfo

    folder = WORK / "retrieval_prose"
    shutil.rmtree(folder, ignore_errors=True)
    store = SQLiteStore(folder / "library.db")
    now = time.time()
    info = StoryInfo(id="emma", title="Emma", genre="novel of manners", topic="Highbury", premise="", outline="",
                     mode="writer", settings=Settings(), profile={}, head_id=None, created_at=now, updated_at=now)
    nodes, parent = [], None
    for depth, i in enumerate(indices if indices is not None else range(len(paragraphs))):
        node = Node(id=new_id(), story_id="emma", parent_id=parent, depth=depth, kind="step", plan="",
                    paragraph=paragraphs[i], rationale="", short_memory="", plans=(), meta={}, created_at=now,
                    synopsis=(synopses or {}).get(i, ""))
        nodes.append(node)
        parent = node.id
    store.create_story(info, nodes, {}, "")  # vectors are added per embedder by the memory's own backfill
    return store, nodes


def run_mode(store, path, mode: Mode, targets: list[dict], embedders: dict, short_memory: str = "",
             indices: list[int] | None = None) -> dict:
    from recurrentgpt.embeddings import get_embedder
    from recurrentgpt.memory import LongTermMemory

    key = (mode.embedder, mode.query_int8)
    if key not in embedders:
        inner = get_embedder(mode.embedder)
        if mode.query_int8 is not None:
            inner.query_int8 = mode.query_int8
        embedders[key] = CachedEmbedder(inner)
    cached = embedders[key]
    memory = LongTermMemory(store, as_embedder(cached, mode.max_words), mode.retrieval, mode.chunk_words,
                            **mode.options)
    started = time.perf_counter()
    memory.recall("emma", path, "warm up: load and backfill the vectors", 1, exclude_seqs=path[:1])
    prepare_s = time.perf_counter() - started
    kinds = ("paraphrase", "by_name")
    hits = {kind: {f"R@{k}": [] for k in KS} | {f"R@{k}±1": [] for k in KS} for kind in kinds}
    times, found = [], []
    for t in targets:
        for kind in kinds:
            query = expand_query(t[kind], short_memory) if mode.expand else t[kind]
            started = time.perf_counter()
            got = memory.recall("emma", path, query, max(KS), exclude_seqs=path[:1])
            times.append(time.perf_counter() - started)
            depths = [indices[r.depth] if indices else r.depth for r in got]  # paragraph numbers
            for k in KS:
                hits[kind][f"R@{k}"].append(t["paragraph"] in depths[:k])
                hits[kind][f"R@{k}±1"].append(any(abs(d - t["paragraph"]) <= 1 for d in depths[:k]))
            found.append({"target": t["paragraph"], "kind": kind, "top5": depths})
    summary = {kind: {m: round(float(np.mean(v)), 3) for m, v in hits[kind].items()} for kind in kinds}
    summary["all"] = {m: round(float(np.mean(hits["paraphrase"][m] + hits["by_name"][m])), 3) for m in hits["by_name"]}
    return {"label": mode.label, "retrieval": mode.retrieval, "embedder": cached.name,
            "chunk_words": memory.chunk_words, "query_precision": getattr(cached.inner, "query_precision", "float32"),
            "options": mode.options, "query_expansion": mode.expand, "recall": summary,
            "recall_p50_ms": ms(median(times)),
            "prepare_s": round(prepare_s, 1), "passages_embedded_now": cached.embedded, "found": found}


def default_modes(extra_embedders: list[str]) -> list[Mode]:
    modes = [
        Mode("dense (MiniLM)", "dense"),
        Mode("bm25", "bm25"),
        Mode("hybrid: rank fusion", "hybrid"),
        Mode("weighted: cosine + IDF-weighted BM25 (default)", "weighted"),
        Mode("hybrid, 40-word chunks", "hybrid", chunk_words=40),
        Mode("hybrid + query expansion", "hybrid", expand=True),
        Mode("weighted + query expansion", "weighted", expand=True),
    ]
    for spec in extra_embedders:  # e.g. st:/path/to/all-mpnet-base-v2 (see BENCHMARKS.md)
        name = Path(spec.split(":", 1)[-1]).name
        modes += [Mode(f"dense ({name})", "dense", embedder=spec), Mode(f"hybrid ({name})", "hybrid", embedder=spec),
                  Mode(f"weighted ({name})", "weighted", embedder=spec)]
        if spec == "embeddinggemma":  # the fifth pass: query precision x chunk size, each named, whatever the defaults
            modes += [Mode(f"{retrieval} ({name}, {precision} query, {words}-word chunks)", retrieval, embedder=spec,
                           max_words=words, query_int8=precision == "int8")
                      for words in GEMMA_CHUNK_WORDS for precision in ("float", "int8")
                      for retrieval in ("dense", "hybrid", "weighted")]
    return modes


def synopsis_modes() -> list[Mode]:
    return [Mode(f"{label}{' + synopses' if on else ''}", retrieval, synopses=on)
            for label, retrieval in (("dense (MiniLM)", "dense"), ("hybrid", "hybrid"),
                                     ("weighted (default)", "weighted"))
            for on in (False, True)]


def load_synopses() -> tuple[list[int], dict[int, str], dict]:
    if not SYNOPSES_FILE.exists():
        sys.exit(f"error: no {SYNOPSES_FILE.name}: run bench/emma_synopses.py first")
    data = json.loads(SYNOPSES_FILE.read_text())
    synopses = {int(k): v for k, v in data["synopses"].items()}
    about = {k: data[k] for k in ("how", "model", "batch", "subset_window", "commit", "paragraphs_chosen")}
    about["paragraphs_with_a_synopsis"] = len(synopses)
    about["seconds_writing"] = round(sum(r["seconds"] for r in data["runs"]), 1)
    about["calls"] = sum(r["calls"] for r in data["runs"])
    return data["chosen"], synopses, about


def query_threads(targets: list[dict]) -> dict:
    """Query embedding with one torch thread vs torch's default, on the same plans (issue 12)."""
    from recurrentgpt.embeddings.sentence_transformers import SentenceTransformerEmbedder

    out = {}
    plans = [t[kind] for t in targets for kind in ("paraphrase", "by_name")]
    for label, threads in (("1 thread", 1), ("torch default", None)):
        embedder = SentenceTransformerEmbedder(query_threads=threads)
        embedder.embed_query("warm up")
        times = []
        for plan in plans:
            started = time.perf_counter()
            embedder.embed_query(plan)
            times.append(time.perf_counter() - started)
        out[label] = {"p50_ms": ms(median(times)), "mean_ms": ms(float(np.mean(times)))}
    return out


def main(modes: list[Mode] | None = None, name: str = "retrieval_prose") -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", help="labels to run, separated by ';' (or ',' when no label has one; default: all)")
    parser.add_argument("--embedder", action="append", default=[], help="also measure this embedder spec (repeatable)")
    parser.add_argument("--novel", choices=sorted(NOVELS), default="emma",
                        help="emma (the set the defaults were chosen on) or persuasion (held out)")
    parser.add_argument("--out", help=f"results file name in bench/results (default: {name}, {name}_persuasion)")
    parser.add_argument("--max-wait", type=float, default=240, help="seconds to wait for a quieter machine")
    parser.add_argument("--synopses", action="store_true",
                        help="measure the paragraphs of bench/data/emma_synopses.json without and with their synopses")
    args = parser.parse_args()
    modes = modes or (synopsis_modes() if args.synopses else default_modes(args.embedder))
    if args.modes:
        labels = {m.label for m in modes}
        wanted = ({args.modes.strip()} if args.modes.strip() in labels
                  else {m.strip() for m in args.modes.split(";" if ";" in args.modes else ",")})
        assert wanted <= labels, f"no such mode: {sorted(wanted - labels)}"
        modes = [m for m in modes if m.label in wanted]

    novel = NOVELS[args.novel]
    out_name = args.out or (name if novel.name == "emma" else f"{name}_{novel.name}")
    paragraphs = cut_paragraphs(load_novel(novel), novel.heading)
    targets = load_targets(paragraphs, novel)
    short_memory = json.loads(novel.targets_file.read_text()).get("short_memory", "")
    indices, synopses, synopses_about = load_synopses() if args.synopses else (None, {}, None)
    if indices is not None:
        assert novel.name == "emma", "the cached synopses are Emma's"
        missing = [t["paragraph"] for t in targets if t["paragraph"] not in indices]
        assert not missing, f"targets without a place in the subset: {missing}"
        print(f"subset: {len(indices)} paragraphs, {len(synopses)} with a synopsis ({synopses_about['how']})")
    load_before = wait_for_quiet(max_wait=args.max_wait)
    mean_words = np.mean([len(p.split()) for p in paragraphs])
    print(f"{novel.title}: {len(paragraphs)} paragraphs, {mean_words:.0f} words on average; "
          f"{len(targets)} targets x 2 plans")
    embedders: dict = {}
    results = []
    for mode in modes:
        # a fresh library per mode: no mode sees another's vectors
        store, nodes = build_library(paragraphs, indices, synopses if mode.synopses else None)
        r = run_mode(store, store.path_seqs(nodes[-1].id), mode, targets, embedders, short_memory, indices)
        store.close()
        results.append(r)
        s = r["recall"]
        print(f"  {mode.label}: all R@5 {s['all']['R@5']:.2f}, paraphrase R@5 {s['paraphrase']['R@5']:.2f} "
              f"(p50 {r['recall_p50_ms']:.0f} ms; prepared in {r['prepare_s']} s)")
    threads = (query_threads(targets) if novel.name == "emma" and not args.synopses
               and any(m.embedder == "minilm" for m in modes) else {})
    print("query embedding (MiniLM):", threads)
    rows = []
    for r in results:
        row = [r["label"]]
        for kind in ("paraphrase", "by_name", "all"):
            s = r["recall"][kind]
            row += [f"{s['R@1']:.2f} ({s['R@1±1']:.2f})", f"{s['R@2']:.2f} ({s['R@2±1']:.2f})",
                    f"{s['R@5']:.2f} ({s['R@5±1']:.2f})"]
        rows.append(row + [f"{r['recall_p50_ms']:.0f}"])
    print()
    print("R@k (±1: the target or a neighbour)")
    print(table(["mode", "para R@1", "para R@2", "para R@5", "name R@1", "name R@2", "name R@5",
                 "all R@1", "all R@2", "all R@5", "p50 ms"], rows))
    write_results(out_name, {
        "load_average_before": load_before, "text": f"Jane Austen, {novel.title} (r-cran-janeaustenr)",
        "paragraphs": len(indices or paragraphs), "min_words": MIN_WORDS, "targets": len(targets), "modes": results,
        "query_embedding_threads": threads, "subset": indices, "synopses": synopses_about,
    })


if __name__ == "__main__":
    main()
