"""The OpenAI-compatible backend against real HTTP servers on 127.0.0.1 that misbehave on purpose."""

import json
import socket
import time

import pytest

from recurrentgpt import Loom, HashingEmbedder
from recurrentgpt.errors import ModelAuthError, ModelConnectionError, ModelError, OutputFormatError
from recurrentgpt.models.base import Request
from recurrentgpt.models.openai import OpenAIModel

from .conftest import SMALL
from .fakeserver import FakeServer, drop, sse_chunks, stall, status, stream, whole

SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
STEP = json.dumps({"paragraph": "The tide came in.", "rationale": "r", "short_memory": "m",
                   "plans": ["one plan", "two plan", "three plan"]})


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


def model(server, **kw):
    return OpenAIModel("fake", base_url=server.url, api_key="sk-test", backoff=0.01, **kw)


def test_streams_text_and_sends_the_key(server):
    server.behaviours.append(stream('{"a": "hello"}'))
    seen = []
    out = model(server).complete(Request("sys", "hi", schema=SCHEMA), seen.append)
    assert out.text == '{"a": "hello"}' and "".join(seen) == out.text
    assert server.headers[0]["Authorization"] == "Bearer sk-test"
    assert server.bodies[0]["stream"] is True and server.bodies[0]["response_format"]["type"] == "json_schema"


def test_falls_back_from_json_schema_to_json_object_to_text_and_remembers(server):
    server.behaviours += [
        status(400, "response_format json_schema is not supported"),
        status(500, "Input should be 'text' or 'json_object' (response_format)"),  # llama-cpp-python says 500
        stream('{"a": "x"}'),
        stream('{"a": "y"}'),
    ]
    m = model(server)
    assert m.complete(Request("s", "p", schema=SCHEMA)).text == '{"a": "x"}'
    assert [b.get("response_format", {}).get("type") for b in server.bodies] == ["json_schema", "json_object", None]
    m.complete(Request("s", "p", schema=SCHEMA))
    assert "response_format" not in server.bodies[-1]  # remembered: text mode straight away


def test_json_object_with_schema_is_what_llama_cpp_servers_take(server):
    server.behaviours += [status(400, "unknown response_format type"), stream('{"a": "x"}')]
    m = model(server)
    m.complete(Request("s", "p", schema=SCHEMA))
    assert server.bodies[-1]["response_format"] == {"type": "json_object", "schema": SCHEMA}


def test_wrong_key_is_an_auth_error(server):
    server.behaviours.append(status(401, "Incorrect API key provided"))
    with pytest.raises(ModelAuthError, match="refused the API key.*Incorrect API key"):
        model(server).complete(Request("s", "p"))


def test_rate_limits_and_5xx_are_retried_with_backoff_then_succeed(server):
    server.behaviours += [status(429, "slow down", {"Retry-After": "0"}), status(503, "busy"), stream("fine")]
    assert model(server).complete(Request("s", "p")).text == "fine"
    assert len(server.bodies) == 3


def test_retries_are_bounded(server):
    server.behaviours += [status(502, "bad gateway")] * 10
    with pytest.raises(ModelError, match="kept failing.*502"):
        model(server, max_retries=2).complete(Request("s", "p"))
    assert len(server.bodies) == 3


def test_connection_refused_is_a_clear_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    m = OpenAIModel("x", base_url=f"http://127.0.0.1:{port}/v1", api_key="k")
    with pytest.raises(ModelConnectionError, match="cannot reach.*connection refused"):
        m.complete(Request("s", "p"))


def test_a_stream_that_stalls_mid_paragraph_times_out(server):
    server.behaviours.append(stall(sse_chunks('{"paragraph": "The sea')[0], seconds=5))
    started = time.perf_counter()
    with pytest.raises(ModelConnectionError, match="did not answer within 1 s"):
        model(server, timeout=1).complete(Request("s", "p"))
    assert time.perf_counter() - started < 4


def test_empty_bodies_and_malformed_events_are_model_errors(server):
    server.behaviours += [stream("", raw=[b"data: [DONE]\n\n"]), stream("", raw=[b"data: {not json\n\n"])]
    with pytest.raises(ModelError, match="empty answer"):
        model(server).complete(Request("s", "p"))
    with pytest.raises(ModelError, match="malformed event"):
        model(server).complete(Request("s", "p"))


def test_non_utf8_bytes_do_not_crash_the_stream(server):
    event = b'data: {"choices": [{"delta": {"content": "caf\xe9 \xff ok"}}]}\n\ndata: [DONE]\n\n'
    server.behaviours.append(stream("", raw=[event]))
    out = model(server).complete(Request("s", "p"))
    assert out.text.endswith("ok")


def test_a_server_that_ignores_stream_is_read_whole(server):
    server.behaviours.append(whole("all at once"))
    out = model(server).complete(Request("s", "p"))
    assert out.text == "all at once" and out.usage.prompt_tokens == 11


def test_text_mode_never_sends_response_format(server):
    server.behaviours.append(stream("Paragraph: x"))
    m = model(server, response_format="text")
    assert m.supports_schema is False
    m.complete(Request("s", "p", schema=SCHEMA))
    assert "response_format" not in server.bodies[0]


def test_truncated_and_wrong_shape_answers_are_retried_then_fail_cleanly(server, tmp_path):
    loom = Loom.open(tmp_path / "l.db", model(server, response_format="json_object"), HashingEmbedder())
    opening = json.dumps({"title": "T", "outline": "o" * 50, "beats": "b" * 30, "paragraph_1": "p" * 90,
                          "synopsis_1": "s" * 20, "paragraph_2": "q" * 90, "synopsis_2": "t" * 20,
                          "short_memory": "m" * 50, "plans": ["a" * 20, "b" * 20, "c" * 20]})
    server.behaviours.append(stream(opening))
    info = loom.new_story("fantasy", "x", settings=SMALL)
    before = len(loom.tree(info.id))
    server.behaviours += [
        stream(STEP[:40], finish="length"),  # cut off by max_tokens
        stream('{"paragraph": 5, "plans": "no"}'),  # valid JSON, wrong shape
        stream("Sorry, I cannot help with that."),
        stream(STEP[:-10]),
    ]
    with pytest.raises(OutputFormatError, match="wrong shape 4 times"):
        loom.step(info.id, 0)
    assert len(loom.tree(info.id)) == before
    server.behaviours.append(stream(STEP))
    assert loom.step(info.id, 0).paragraph == "The tide came in."


def test_a_connection_dropped_before_any_answer_is_retried(server):
    server.behaviours += [drop(), drop(), stream("fine")]
    assert model(server).complete(Request("s", "p")).text == "fine"
    assert len(server.bodies) == 3
    server.behaviours += [drop()] * 5
    with pytest.raises(ModelConnectionError, match="failed"):
        model(server, max_retries=1).complete(Request("s", "p"))
