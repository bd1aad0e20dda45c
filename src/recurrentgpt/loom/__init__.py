"""The loom: the one door to a library of stories. ``Loom`` is the facade; the modules beside it are its parts.

    nodes     ids, the head check, plans, the slow state along a path, new versions of nodes
    canon     the story bible as of a node, its caches, and the entries chosen for a step
    writing   one step: the cell's input, writing, checking against the canon, the child node
    transfer  import and export of paths, trees and manuscripts
    series    canons shared by the stories of a series, and the review of changes proposed to them
    facade    ``Loom``: holds the store and the (lazily built) model, embedder and memory
"""

from ..story import BIBLE_MODES, validate_settings
from .canon import SIMILAR_ENOUGH
from .facade import MAX_ALTERNATIVES, Loom, OnStep
from .nodes import STATE_KEYS, StoryState, candidate_plans, check_head, new_id, plan_text

__all__ = [
    "BIBLE_MODES",
    "MAX_ALTERNATIVES",
    "SIMILAR_ENOUGH",
    "STATE_KEYS",
    "Loom",
    "OnStep",
    "StoryState",
    "candidate_plans",
    "check_head",
    "new_id",
    "plan_text",
    "validate_settings",
]
