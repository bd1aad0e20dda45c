"""Synopses of paragraphs written before steps wrote them (an imported manuscript, an older story).

A step writes its paragraph's synopsis itself; for the rest ``Loom.write_synopses`` asks the model for
several at a time (``batches``: consecutive paragraphs, up to ``BATCH_PARAGRAPHS`` and ``BATCH_WORDS`` a
call), commits each batch as it comes back, and reports progress. A crash or Ctrl-C keeps every batch
already committed; running it again continues with the paragraphs that still have none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

BATCH_PARAGRAPHS = 8  # paragraphs per model call: fewer calls, but a small model loses count in long lists
BATCH_WORDS = 1500  # and at most this many words of paragraphs per call (the prompt must fit small contexts)


@dataclass(frozen=True)
class SynopsisBackfill:
    """What a backfill did: synopses written, paragraphs whose synopsis the model got wrong (left without one:
    the next run tries them again), and paragraphs not reached (cancelled)."""

    written: int = 0
    dropped: int = 0
    remaining: int = 0
    calls: int = 0
    warnings: list[str] = field(default_factory=list)  # a few of the reasons, for the writer


def batches(items: list[tuple[str, str]], max_paragraphs: int = BATCH_PARAGRAPHS,
            max_words: int = BATCH_WORDS) -> Iterator[list[tuple[str, str]]]:
    """Consecutive (node id, paragraph) pairs, cut so a call reads at most ``max_paragraphs`` paragraphs and
    ``max_words`` words (a longer paragraph goes alone)."""
    batch: list[tuple[str, str]] = []
    words = 0
    for item in items:
        size = len(item[1].split())
        if batch and (len(batch) >= max_paragraphs or words + size > max_words):
            yield batch
            batch, words = [], 0
        batch.append(item)
        words += size
    if batch:
        yield batch
