"""bench/continuity.py's model-checker path, against an OpenAI-compatible server on 127.0.0.1 (plumbing only: the
server knows the answers). The benchmark claims any such server can be scored with `--checker openai:NAME
--base-url URL`; this runs that path on six held-out paragraphs and checks what it counts.

Seen failing with the model's answers parsed against no entry names (selection left out of the loop): the
perfect server's hits were not counted (0 found, 2 within reach)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from recurrentgpt import bible as canon
from tests.fakeserver import FakeServer, whole

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import continuity as bench  # noqa: E402
from continuity_set import load  # noqa: E402


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


def test_a_server_that_knows_the_answers_finds_every_contradiction_selection_lets_it_see(server, caplog):
    data = load()
    items = bench.interleaved([i for i in data["items"] if i["split"] == "test" and i["lang"] == "en"], 6)

    def answer(handler, body):  # quote the planted sentence; on a clean paragraph, invent one about an entry shown
        it = next(i for i in items if i["text"][:200] in body["messages"][-1]["content"])
        p = it["planted"]
        bible = bench.bible_of(data["books"][it["book"]])
        shown = bible[sorted(canon.Index(bible).mentioned(it["text"]))[0]].name
        line = f"{p['entry']} | {p['text']} | the canon | severe" if p else \
            f"{shown} | {shown} flew to the moon. | nobody flies | severe"
        whole(json.dumps({"conflicts": line}))(handler, body)

    server.routes["POST /v1/chat/completions"] = answer
    with caplog.at_level(logging.WARNING, logger="recurrentgpt.continuity"):
        found, seconds, failures, name = bench.run_model(data, items, "openai:judge", server.url)
    assert name == "openai:judge" and failures == 0 and len(seconds) == 6
    assert server.paths.count("POST /v1/chat/completions") == 6
    scored, reach = bench.score(items, found), bench.reach(data, items)
    assert scored["planted"] == 3 and reach["planted"] == 3
    assert scored["found"] == reach["reached"] and scored["false_alarms"] == 0
    assert reach["reached"] < reach["planted"]  # one secret is never named in its paragraph: out of any model's reach
    assert caplog.text.count("not in the paragraph") == 3  # every invented quote dropped, with a warning
