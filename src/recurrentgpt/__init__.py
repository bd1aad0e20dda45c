"""recurrentgpt: RecurrentGPT (Zhou et al. 2023) as a loom-type writing tool.

    from recurrentgpt import Loom
    loom = Loom.open("library.db")          # bundled SmolLM2 + MiniLM, offline
    story = loom.new_story("fantasy", "a dragon who fears fire")
    loom.step(story.id, plan=0)             # follow candidate plan 1
    loom.auto(story.id, steps=3)            # the human simulator chooses
    print(loom.export(story.id, "md"))
"""

from .cell import CellInput, Opening, Premise, RecurrentCell, StepOutput
from .embeddings import Embedder, HashingEmbedder, get_embedder
from .errors import (
    Cancelled,
    ConfigError,
    ConflictError,
    InputError,
    ModelAuthError,
    ModelConnectionError,
    ModelError,
    NotFoundError,
    OutputFormatError,
    RecurrentGPTError,
    RejectedRequest,
    StoreError,
)
from .loom import Loom
from .memory import LongTermMemory
from .models import Completion, Model, Request, ScriptedModel, get_model
from .simulator import Choice, HumanSimulator
from .store import SQLiteStore, StoryStore, open_store
from .story import Node, Retrieved, Settings, StoryInfo, Usage

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "CellInput",
    "Choice",
    "Completion",
    "ConfigError",
    "ConflictError",
    "Embedder",
    "HashingEmbedder",
    "HumanSimulator",
    "InputError",
    "LongTermMemory",
    "Loom",
    "Model",
    "ModelAuthError",
    "ModelConnectionError",
    "ModelError",
    "Node",
    "NotFoundError",
    "Opening",
    "OutputFormatError",
    "Premise",
    "RecurrentCell",
    "RecurrentGPTError",
    "RejectedRequest",
    "Request",
    "Retrieved",
    "SQLiteStore",
    "ScriptedModel",
    "Settings",
    "StepOutput",
    "StoreError",
    "StoryInfo",
    "StoryStore",
    "Usage",
    "get_embedder",
    "get_model",
    "open_store",
]
