"""A pairwise quality evaluation in the paper's manner (RecurrentGPT, Section 3), built to tell two systems apart.

For each genre and story, the generation model writes one opening; every system under comparison continues
that same opening by the same number of words, counted after the opening (systems.py: RecurrentGPT, its
ablations, the rolling baseline at RecurrentGPT's prompt size and at the whole context). A judge model says
which continuation is more interesting and which more coherent, in both orders, on the whole texts or by the
windowed protocol when they do not fit its context (judging.py). Win rates come with 95% intervals over the
pairs, a paired sign test and Holm's correction across the report (stats.py); judge-free measures sit beside
them (measures.py); the report is Markdown with PNG plots (report.py) and JSON. Every model call and finished
unit goes to a journal as it ends, so a stopped run resumes without asking anything twice (journal.py); a
user's own premises come from a file (premises.py).

    from recurrentgpt.evaluation import EvalConfig, run_eval, to_markdown
    report = run_eval(loom, judge=loom.model, config=EvalConfig(genres=["horror"], stories_per_genre=10,
                                                                against=["rolling", "no-long-term"]))
    print(to_markdown(report))
"""

from .journal import Journal, JournaledModel, journal_path
from .judging import CRITERIA, Judge, Judgement, aligned_windows, split_to_fit
from .measures import distinct_n, entity_drift, measure, plan_adherence, repeated_ngrams
from .premises import read_premises
from .report import to_markdown, write_report
from .run import GENRE_TOPICS, EvalConfig, Pair, run_eval
from .stats import compare, holm, score, sign_test, wilson
from .systems import SYSTEMS, System, Written, rolling_prompt, write_recurrent, write_rolling

__all__ = [
    "CRITERIA",
    "GENRE_TOPICS",
    "SYSTEMS",
    "EvalConfig",
    "Judge",
    "Journal",
    "JournaledModel",
    "Judgement",
    "Pair",
    "System",
    "Written",
    "aligned_windows",
    "compare",
    "distinct_n",
    "entity_drift",
    "holm",
    "journal_path",
    "measure",
    "plan_adherence",
    "read_premises",
    "repeated_ngrams",
    "rolling_prompt",
    "run_eval",
    "score",
    "sign_test",
    "split_to_fit",
    "to_markdown",
    "write_report",
    "wilson",
    "write_recurrent",
    "write_rolling",
]
