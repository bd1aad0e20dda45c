"""Series through the JSON API: a member story's bible names its series; a proposal waits for review and is
accepted or rejected like `recurrentgpt series` does it (scripted model, both stores)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from recurrentgpt import bible as canon  # noqa: E402
from recurrentgpt.web import create_app  # noqa: E402
from tests.conftest import SMALL  # noqa: E402


@pytest.fixture
def client(loom):
    with TestClient(create_app(loom, max_body=64 * 1024), base_url="http://127.0.0.1:8765",
                    headers={"X-Requested-With": "test"}) as c:
        yield c


def test_a_proposal_from_one_story_waits_for_review_then_reaches_the_other(client, loom):
    first = loom.new_story("fantasy", "the first book", settings=SMALL).id
    second = loom.new_story("fantasy", "the second book", settings=SMALL).id
    loom.change_bible(first, [canon.Change("add", "Mara Vell", facts=("Mara keeps the lighthouse.",), status="alive")])
    loom.series.create("Saltmarsh", from_story=first)
    loom.series.join("Saltmarsh", second)
    bible = client.get(f"/api/stories/{second}/bible").json()
    assert bible["series"] == "Saltmarsh" and [e["name"] for e in bible["entries"]] == ["Mara Vell"]
    change = {"op": "update", "name": "Mara Vell", "status": "dead"}
    assert client.post(f"/api/stories/{second}/bible", json={"changes": [change]}).status_code == 200
    r = client.post(f"/api/stories/{second}/series/propose", json={})
    assert r.status_code == 200, r.text
    [proposal] = r.json()["proposals"]
    assert proposal["story_id"] == second and proposal["what"] == "update Mara Vell: status 'alive' -> 'dead'"
    assert client.get(f"/api/stories/{first}/bible").json()["entries"][0]["status"] == "alive"
    assert client.get("/api/series").json() == [{"name": "Saltmarsh", "members": sorted([first, second]),
                                                 "canon_changes": 1, "proposed": 1}]
    r = client.post("/api/series/Saltmarsh/accept", json={"ids": [proposal["id"]]})
    assert r.status_code == 200 and r.json()["proposals"] == [] and r.json()["entries"][0]["status"] == "dead"
    assert client.get(f"/api/stories/{first}/bible").json()["entries"][0]["status"] == "dead"


def test_series_mistakes_are_clear_errors(client, loom):
    loner = loom.new_story("fantasy", "a book outside", settings=SMALL).id
    assert client.get("/api/series/Nowhere").status_code == 404
    r = client.post(f"/api/stories/{loner}/series/propose", json={})
    assert r.status_code == 400 and "in no series" in r.text
    loom.series.create("Marsh")
    r = client.post("/api/series/Marsh/reject", json={"ids": [7]})
    assert r.status_code == 400 and "no proposal 7 waits" in r.text
    assert client.post("/api/series/Marsh/accept", json={"bogus": 1}).status_code == 422
