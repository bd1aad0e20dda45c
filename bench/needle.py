"""Does it remember? Planted facts in a long story, found by plans that paraphrase them.

A story of 1,000 word-bank paragraphs (varied, repetitive prose full of captains, chapels, keys and
bells, so there are plenty of near misses; the facts' names never occur in it: checked below) gets
K=20 planted facts — a name, an object, a place — at known positions. Each fact has two queries, written as
plans for a later paragraph:

    paraphrase  needs the fact but shares no content word with it ("the navigation instrument the
                captain concealed" for "Captain Ilse Marrow hid the brass astrolabe ...", minus 'captain')
    by name     names the character only, nothing of the object or place

From the end of the story, the long-term memory (SQLiteStore + LongTermMemory, real all-MiniLM-L6-v2)
recalls top-k; recall@k = the fact's paragraph is among them (k=2 as in the paper, and 5). Modes: dense,
bm25, hybrid. For comparison, a rolling baseline keeps only the most recent text that fits a prompt
budget: the fact is "recalled" if its paragraph is still inside that window. Two budgets: the tokens of
our own step prompt at k=2 (same budget), and SmolLM2's whole 8,192-token context. Tokens are counted
with the bundled model's tokenizer; a rolling prompt's own tokens (its system message and rolling.j2
without text) are counted too and taken off the budget.

    nice -n 10 .venv/bin/python bench/needle.py            # 1,000 paragraphs, 5 modes (~5 min)
    nice -n 10 .venv/bin/python bench/needle.py --quick    # 300 paragraphs, whole-paragraph modes only (~1 min)
"""

from __future__ import annotations

import argparse
import re
import shutil
import time

import numpy as np
import wordbank
from _common import WORK, plt, save_plot, table, timed, wait_for_quiet, write_results

# (fact, paraphrase plan, by-name plan). The checks below keep the paraphrases honest.
FACTS = [
    ("Captain Ilse Marrow hid the brass astrolabe in the well behind the chapel of Saint Orin.",
     "Someone sets out to recover the navigation instrument that the ship's commander concealed.",
     "Ilse Marrow must now explain what she did before the voyage."),
    ("Doctor Fenwick Abernathy buried a jar of silver florins beneath the third apple tree in the Glasswater grove.",
     "A physician's hoard of old money is dug out of the ground among the fruit orchards.",
     "Fenwick Abernathy is questioned about his savings."),
    ("The opera singer Lucinda Vey keeps her dead husband's revolver wrapped in silk inside a hatbox.",
     "A performer who lost her spouse has a firearm hidden among her clothes.",
     "Lucinda Vey receives an unexpected visitor at home."),
    ("Young Tobias Grunwald stole the mayor's emerald seal and sank it in the millpond at Harrowgate.",
     "The boy who took the official's green stamp threw it into the water.",
     "Tobias Grunwald is caught lying about last summer."),
    ("Sister Agathe Pellowe copied the forbidden hymnal by candlelight in the bell tower of Saint Brandel.",
     "The nun secretly transcribes banned church songs at night, high above the abbey.",
     "Agathe Pellowe is summoned by her superior."),
    ("The smuggler Rasmus Okonkwo stores crates of French brandy in a sea cave below the Gullhaven cliffs.",
     "Contraband liquor is kept hidden in a hollow in the rocks by the shore.",
     "Rasmus Okonkwo hears that someone has been asking about him."),
    ("Professor Hedda Lindqvist proved the comet would return in the year of the great flood, and told no one.",
     "The scholar kept secret her calculation of when the celestial visitor comes back.",
     "Hedda Lindqvist is invited to speak at the academy."),
    ("Old Matthias Crowe owes forty gold crowns to the moneylender Beatrix Soames of Ketterby.",
     "A debt between an elderly man and a woman who lends at interest comes due.",
     "Matthias Crowe cannot sleep and walks the streets."),
    ("The twins Odile and Perrin Voss swapped places on the night of the coronation ball.",
     "Two identical siblings traded identities during the royal dance.",
     "Odile Voss is recognised by an old friend."),
    ("Lieutenant Cassius Drummond lost his left hand to frostbite on the Kvarken ice crossing.",
     "The officer's missing limb came from a bitter winter march across the frozen strait.",
     "Cassius Drummond is asked to greet the governor."),
    ("The cartographer Nadia Fairweather drew a secret map of the tunnels under Vellmoor prison.",
     "Someone charted the hidden passages beneath the jail.",
     "Nadia Fairweather is offered money for her work."),
    ("Grandmother Ottilie Hask poisoned the vicar's dog with foxglove tea after it bit her grandson.",
     "An old woman killed the clergyman's hound with a toxic herbal drink for attacking a child.",
     "Ottilie Hask invites the neighbours to supper."),
    ("The orphan Benedikt Sorel carries a locket with a portrait of the duchess of Arlemont.",
     "The parentless boy wears a small pendant holding a picture of a noblewoman.",
     "Benedikt Sorel is stopped at the city gate."),
    ("Engineer Marguerite Oyelaran designed the dam that collapsed and drowned the village of Pell.",
     "The woman who planned the failed barrier that flooded a hamlet carries the guilt.",
     "Marguerite Oyelaran applies for a new post in the capital."),
    ("The falconer Ambrose Kettleby trained a white gyrfalcon to carry messages to the rebels.",
     "A bird of prey has been taught to deliver notes to the insurgents.",
     "Ambrose Kettleby is seen on the road at dawn."),
    ("Widow Philippa Strangways keeps her fortune of pearls sewn into the lining of a blue cloak.",
     "A bereaved woman's wealth of gems is stitched inside her garment.",
     "Philippa Strangways prepares to travel north."),
    ("The choirmaster Lorcan Tewkesbury forged the bishop's signature on the deed to the abbey lands.",
     "A music teacher faked a churchman's name on property papers.",
     "Lorcan Tewkesbury is called before the court."),
    ("The apothecary Serafina Quell sold laudanum to the young prince in the winter of the siege.",
     "A chemist supplied an opium tincture to royalty while the city was surrounded.",
     "Serafina Quell closes her shop early."),
    ("Blacksmith Ewan Mortlake forged the iron key that opens the vault beneath the counting house.",
     "The metalworker made the means to unlock the strongroom under the bank.",
     "Ewan Mortlake is offered a bribe by a stranger."),
    ("The ferryman Joachim Slade saw the magistrate push a woman from the Wester bridge.",
     "A boatman witnessed a judge shove someone off a crossing into the river.",
     "Joachim Slade is asked to testify."),
]

SENTENCES = 8
CHUNK_WORDS = 40
MODES = ("dense", "bm25", "hybrid", "weighted", f"dense, {CHUNK_WORDS}-word chunks",
         f"hybrid, {CHUNK_WORDS}-word chunks")
KS = (2, 5)


def _chunked_embedder():
    from recurrentgpt.embeddings.base import Embedder

    class Chunked(Embedder):
        """The same embedder, told it reads fewer words, so LongTermMemory cuts paragraphs finer."""

        def __init__(self, inner: Embedder, words: int):
            self.inner, self.max_words = inner, words
            self.name = f"{inner.name}/chunks-{words}"

        def embed(self, texts: list[str]) -> np.ndarray:
            return self.inner.embed(texts)

    return Chunked


def check_queries() -> None:
    """Paraphrases share no content word with their fact; by-name plans share only the name; no name
    of a fact (a capitalised word after its first) is a word of the bank, so only the fact carries it."""
    bank = wordbank.vocabulary()
    for fact, para, named in FACTS:
        names = {w.lower() for w in re.findall(r"[A-Z][a-z]+", fact)[1:]}
        assert not names & bank, f"the word bank contains the fact's names {names & bank}: {fact}"
        shared = wordbank.content_words(fact) & wordbank.content_words(para)
        assert not shared, f"paraphrase repeats {shared}: {para}"
        name = set(re.findall(r"[A-Z][a-z]+ [A-Z][a-z]+", named)[0].lower().split())
        extra = (wordbank.content_words(fact) & wordbank.content_words(named)) - name
        assert not extra, f"by-name plan repeats {extra}: {named}"


def build_story(n: int) -> tuple[list[str], dict[int, int]]:
    """Paragraph texts, and fact index -> depth of the paragraph holding it."""
    texts = [wordbank.paragraph(i, SENTENCES, seed=7) for i in range(n)]
    depths = np.linspace(15, n - 3, len(FACTS)).astype(int)  # spread over the story; the last ones are recent
    where = {}
    for f, depth in enumerate(depths):
        sentences = re.split(r"(?<=[.!?\"])\s+", texts[depth])
        sentences.insert(len(sentences) // 2, FACTS[f][0])
        texts[depth] = " ".join(sentences)
        where[f] = int(depth)
    return texts, where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="300 paragraphs and the whole-paragraph modes only (no 40-word chunks)")
    parser.add_argument("--paragraphs", type=int, default=None, help="story length (default 1,000; --quick: 300)")
    parser.add_argument("--embedder", default="minilm", help="embedder spec (default: %(default)s)")
    parser.add_argument("--out", default="needle", help="results name in bench/results (default: %(default)s[_quick])")
    args = parser.parse_args()
    check_queries()
    modes = [m for m in MODES if not (args.quick and "chunks" in m)]

    from recurrentgpt import prompts
    from recurrentgpt.cell import CellInput, RecurrentCell
    from recurrentgpt.embeddings import get_embedder
    from recurrentgpt.evaluation.systems import ROLLING_SYSTEM
    from recurrentgpt.loom import new_id
    from recurrentgpt.memory import LongTermMemory
    from recurrentgpt.models import ScriptedModel
    from recurrentgpt.models.llamacpp import LlamaCppModel
    from recurrentgpt.store import SQLiteStore
    from recurrentgpt.story import Node, Settings, StoryInfo

    load_before = wait_for_quiet()
    Chunked = _chunked_embedder()
    n = args.paragraphs or (300 if args.quick else 1000)
    texts, where = build_story(n)
    folder = WORK / "needle"
    shutil.rmtree(folder, ignore_errors=True)
    store = SQLiteStore(folder / "library.db")
    embedder = get_embedder(args.embedder)
    memory = LongTermMemory(store, embedder, "hybrid")
    now = time.time()
    settings = Settings(paragraph_sentences=SENTENCES)
    info = StoryInfo(id="needle", title="The Harbor Town", genre="literary", topic="a harbor town", premise="",
                     outline="Life in a harbor town over many years.", mode="writer", settings=settings, profile={},
                     head_id=None, created_at=now, updated_at=now)
    nodes, parent = [], None
    for i, text in enumerate(texts):
        node = Node(id=new_id(), story_id="needle", parent_id=parent, depth=i, kind="step", plan="", paragraph=text,
                    rationale="", short_memory="", plans=(), meta={}, created_at=now)
        nodes.append(node)
        parent = node.id
    embed_s, vectors = timed(lambda: memory.embed({nd.id: nd.paragraph for nd in nodes}))
    store.create_story(info, nodes, vectors, embedder.name)
    print(f"{n} paragraphs embedded with {embedder.name} in {embed_s:.0f} s ({n / embed_s:.0f}/s)")
    # the same memory with smaller chunks (a paragraph still scores as its best chunk)
    chunked = Chunked(embedder, CHUNK_WORDS)
    chunk_s = None
    if any("chunks" in m for m in modes):
        chunk_s, chunk_vectors = timed(
            lambda: LongTermMemory(store, chunked).embed({nd.id: nd.paragraph for nd in nodes}))
        store.add_vectors(chunk_vectors, chunked.name)
        print(f"... and again in {CHUNK_WORDS}-word chunks in {chunk_s:.0f} s")

    head = nodes[-1]
    path = store.path_seqs(head.id)
    kinds = {"paraphrase": 1, "by name": 2}
    hits: dict[str, dict[str, dict[int, list[bool]]]] = {m: {k: {kk: [] for kk in KS} for k in kinds} for m in modes}
    per_fact = []
    for mode in modes:
        base_mode = mode.split(",")[0]
        mem = LongTermMemory(store, chunked if "chunks" in mode else embedder, base_mode)
        for f, fact in enumerate(FACTS):
            for kind, col in kinds.items():
                retrieved = mem.recall("needle", path, fact[col], max(KS), exclude_seqs=path[:1])
                depths = [r.depth for r in retrieved]
                for k in KS:
                    hits[mode][kind][k].append(where[f] in depths[:k])
                per_fact.append({"mode": mode, "fact": f, "kind": kind, "depth": where[f], "top5_depths": depths})

    # the rolling baseline: is the fact's paragraph still inside the most recent text that fits?
    tokenizer = LlamaCppModel()
    para_tokens = np.array([tokenizer.count_tokens(t + "\n\n") for t in texts])
    from_end = np.cumsum(para_tokens[::-1])[::-1]  # tokens from the start of paragraph i to the end of the story

    # our own step prompt for the same story (k=2 recalled paragraphs, a short-term memory of 10 sentences)
    recorder = ScriptedModel()
    cell = RecurrentCell(recorder, settings)
    budgets = []
    hybrid = LongTermMemory(store, embedder, "hybrid")
    for f, fact in enumerate(FACTS):
        recalled = hybrid.recall("needle", path, fact[1], 2, exclude_seqs=path[:1])
        cell.step(CellInput(genre=info.genre, title=info.title, outline=info.outline, plan=fact[1],
                            previous_paragraph=head.paragraph,
                            short_memory=wordbank.paragraph(10_000 + f, 10, seed=7),
                            long_term=[r.paragraph for r in recalled]))
        request = recorder.requests[-1]
        budgets.append(tokenizer.count_tokens(request.system) + tokenizer.count_tokens(request.prompt))
    same_budget = int(np.median(budgets))
    # what a rolling prompt costs before any story text: its system message and rolling.j2 without text
    rolling_overhead = tokenizer.count_tokens(ROLLING_SYSTEM) + tokenizer.count_tokens(prompts.render(
        settings.language, "rolling", genre=info.genre, title=info.title,
        paragraph_sentences=settings.paragraph_sentences, text=""))
    windows = {"rolling, same budget": same_budget - rolling_overhead,
               "rolling, 8,192-token context": 8192 - 512 - rolling_overhead}
    rolling = {}
    for label, window in windows.items():
        inside = [bool(from_end[where[f]] <= window) for f in range(len(FACTS))]
        rolling[label] = {"window_tokens": window, "recall": float(np.mean(inside)),
                          "paragraphs_in_window": int(np.sum(from_end <= window))}

    rows, summary = [], {}
    for mode in modes:
        summary[mode] = {}
        for kind in kinds:
            summary[mode][kind] = {f"recall@{k}": float(np.mean(hits[mode][kind][k])) for k in KS}
        both = {f"recall@{k}": float(np.mean(hits[mode]["paraphrase"][k] + hits[mode]["by name"][k])) for k in KS}
        summary[mode]["all"] = both
        rows.append([f"long-term memory: {mode}",
                     summary[mode]["paraphrase"]["recall@2"], summary[mode]["paraphrase"]["recall@5"],
                     summary[mode]["by name"]["recall@2"], summary[mode]["by name"]["recall@5"],
                     both["recall@2"], both["recall@5"]])
    for label, r in rolling.items():
        rows.append([f"{label} ({r['window_tokens']:,} tokens = {r['paragraphs_in_window']} paragraphs)"]
                    + [r["recall"]] * 6)
    print()
    print(f"{len(FACTS)} facts in {n} paragraphs ({int(from_end[0]):,} tokens); "
          f"our step prompt: median {same_budget:,} tokens")
    print(table(["system", "paraphrase R@2", "paraphrase R@5", "by name R@2", "by name R@5", "all R@2", "all R@5"],
                rows))

    write_results(args.out, {
        "quick": args.quick, "embedder": embedder.name, "load_average_before": load_before, "paragraphs": n,
        "facts": len(FACTS),
        "story_tokens": int(from_end[0]), "embed_s": round(embed_s, 1),
        "chunk_embed_s": round(chunk_s, 1) if chunk_s is not None else None,
        "our_step_prompt_tokens_median": same_budget, "rolling_prompt_overhead_tokens": rolling_overhead,
        "memory": summary, "rolling": rolling,
        "fact_depths": [where[f] for f in range(len(FACTS))],
        "misses": [r for r in per_fact if r["depth"] not in r["top5_depths"][:2]],
    })

    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(8.5, 4.2))
    labels = [f"LTM {m}".replace(", ", "\n") for m in modes] + ["rolling\n(same budget)", "rolling\n(8k context)"]
    r2 = [summary[m]["all"]["recall@2"] for m in modes] + [r["recall"] for r in rolling.values()]
    r5 = [summary[m]["all"]["recall@5"] for m in modes] + [r["recall"] for r in rolling.values()]
    x = np.arange(len(labels))
    ax.bar(x - 0.2, r2, 0.4, label="recall@2 (rolling: fact in window)")
    ax.bar(x + 0.2, r5, 0.4, label="recall@5")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"share of {2 * len(FACTS)} queries")
    ax.set_title(f"Planted facts found from the end of a {n:,}-paragraph story")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_plot(fig, args.out, args.quick)
    store.close()


if __name__ == "__main__":
    main()
