"""Request bodies of the JSON API. Unknown fields are refused, so a typo is an error, not a no-op."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..bible import Kind

Text = str  # any length up to the body limit; emptiness is judged by the loom (400, not 422)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Profile(_Body):
    """Interactive fiction: who the reader is and what the story should feel like."""

    name: str = Field("", max_length=200)
    tone: str = Field("", max_length=500)
    avoid: str = Field("", max_length=500)


class NewStory(_Body):
    genre: str = Field(..., max_length=200, examples=["science fiction"])
    topic: str = Field(..., max_length=2000, examples=["a lighthouse keeper on Mars finds a message from Earth"])
    premise: Text = ""
    outline: Text = ""
    mode: Literal["writer", "fiction"] = "writer"
    profile: Profile | None = None
    settings: dict[str, Any] = Field(default_factory=dict, examples=[{"paragraph_sentences": 8}],
                                     description="Any fields of Settings; the rest keep the paper's defaults.")


class Guarded(_Body):
    expected_head: str | None = Field(
        None, description="The head this client shows; if the story's head differs the request fails with 409."
    )


class StepRequest(Guarded):
    plan: Text | None = Field(None, description="The plan for the next paragraph, as text.")
    plan_index: int | None = Field(None, ge=0, description="Or the 0-based index of a candidate plan.")
    node: str = Field("head", description="Continue from this node (id, unique prefix, bookmark or 'head').")
    new_chapter: bool = Field(False, description="End the chapter first (one call: its summary, the revised arc, the "
                                                 "next chapter's beats); this paragraph opens the next chapter.")


class AutoRequest(Guarded):
    steps: int = Field(3, ge=1, le=100)


class RegenerateRequest(Guarded):
    node: str = "head"
    n: int = Field(1, ge=1, le=8)
    fix_conflicts: bool = Field(False, description="Tell the model what the node's paragraph contradicted in the "
                                                   "story bible (its stored conflicts), as things not to write.")


class EditRequest(Guarded):
    paragraph: Text | None = None
    short_memory: Text | None = None
    plans: list[Text] | None = None
    plan: Text | None = None
    refresh: bool | None = None  # re-derive memory and plans for a new paragraph (default: unless given)
    reattach: bool = False  # keep the paragraphs below the edited one, under the edit


class CheckoutRequest(_Body):
    node: str


class BookmarkRequest(_Body):
    name: str = Field(..., min_length=1, max_length=80)
    node: str = "head"


class PruneRequest(_Body):
    node: str
    restore: bool = False


class BibleChange(_Body):
    """One change to the story bible. The limits (name, aliases, facts, status) are the loom's: a change over
    them is one 400 that names everything wrong, and nothing is written."""

    op: Literal["add", "update", "remove"]
    name: Text = Field(..., description="The entry's name (for update and remove: its current name).")
    kind: Kind | None = None
    aliases: list[Text] | None = Field(None, description="Replaces the aliases.")
    facts: list[Text] | None = Field(None, description="Replaces the facts.")
    add_facts: list[Text] = Field(default_factory=list, description="Appended to the facts.")
    status: Text | None = None
    pinned: bool | None = None
    rename: Text | None = None


class BibleRequest(Guarded):
    changes: list[BibleChange] = Field(..., min_length=1, max_length=50)
    node: str = Field("head", description="The node whose bible changes (a new version of it is written).")


class AcceptRequest(Guarded):
    node: str = "head"
    names: list[str] | None = Field(None, description="Accept only the proposals for these entries (default: all).")


class ProposeRequest(_Body):
    names: list[str] | None = Field(None, max_length=200,
                                    description="Offer these entries (default: every entry that differs).")
    node: str = Field("head", description="The story's bible as of this node.")


class DecideRequest(_Body):
    ids: list[int] | None = Field(None, max_length=2000, description="These proposals (default: all waiting).")


class EndChapterRequest(Guarded):
    node: str = Field("head", description="End the chapter at this node (a new version of it is written).")


class OutlineRequest(Guarded):
    outline: Text | None = Field(None, description="The book's arc, new (at most 400 words).")
    beats: Text | None = Field(None, description="What the current chapter covers, new (at most 250 words).")
    node: str = Field("head", description="The node whose outline changes (a new version of it is written).")


class PinRequest(Guarded):
    sentences: list[Text] = Field(..., min_length=1, max_length=60,
                                  description="Sentences of the node's short-term memory, as text or their number.")
    unpin: bool = False
    node: str = "head"
