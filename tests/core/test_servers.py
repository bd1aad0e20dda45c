"""Servers as writers run them, against fakes that answer each server's documented endpoints: the context each
says it runs with, a call refused before it is made when it would not fit, Ollama's native chat (streaming, a schema
in `format`, num_ctx, token counts), the story's samplers and the seed on the wire under each server's own names,
and `models` and `doctor`."""

from __future__ import annotations

import json

import pytest

from recurrentgpt.cli import main
from recurrentgpt.embeddings import get_embedder
from recurrentgpt.errors import ConfigError, ContextTooSmall
from recurrentgpt.models import Sampling, get_model
from recurrentgpt.models.base import Request
from recurrentgpt.models.context import estimate_tokens, needed
from tests.fakeserver import FakeServer, ndjson, reply, status, stream

SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
LONG = "The lighthouse keeper counted the ships again. " * 400  # ~3,200 words: ~4,300 tokens


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


# -- the context, where each server says it ----------------------------------------------------------------------

CONTEXTS = {
    "llamacpp-server": ("GET /props", {"default_generation_settings": {"n_ctx": 4096}, "total_slots": 1}),
    "koboldcpp": ("GET /api/extra/true_max_context_length", {"value": 4096}),
    "lmstudio:qwen2.5-7b-instruct": ("GET /api/v0/models/qwen2.5-7b-instruct",
                                     {"id": "qwen2.5-7b-instruct", "object": "model", "type": "llm", "state": "loaded",
                                      "max_context_length": 32768, "loaded_context_length": 4096}),
    "vllm:Qwen/Qwen2.5-7B-Instruct": ("GET /v1/models", {"object": "list", "data": [
        {"id": "Qwen/Qwen2.5-7B-Instruct", "object": "model", "max_model_len": 4096}]}),
}


@pytest.mark.parametrize("spec", CONTEXTS)
def test_each_server_says_its_context_through_its_documented_endpoint(server, spec):
    route, payload = CONTEXTS[spec]
    server.routes[route] = reply(payload)
    model = get_model(spec, base_url=server.url)
    assert model.context_window() == 4096
    assert route in server.paths


def test_lm_studio_v1_api_is_read_when_v0_is_gone(server):
    server.routes["GET /api/v1/models"] = reply({"models": [
        {"type": "llm", "key": "gemma-3", "loaded_instances": [{"id": "gemma-3", "config": {"context_length": 4096}}],
         "max_context_length": 32768}]})
    assert get_model("lmstudio:gemma-3", base_url=server.url).context_window() == 4096


def test_a_model_lm_studio_has_not_loaded_has_no_context_yet(server):
    server.routes["GET /api/v0/models/m"] = reply({"id": "m", "state": "not-loaded", "max_context_length": 32768})
    context = get_model("lmstudio:m", base_url=server.url).context()
    assert context.tokens is None and context.limit == 32768 and "not loaded" in context.source


@pytest.mark.parametrize("spec", CONTEXTS)
def test_a_call_that_would_not_fit_is_refused_before_it_is_made(server, spec):
    """A ~4,300-token prompt against a 4,096-token context: refused with the server's own fix, and nothing is
    posted. (Seen failing against the code before: the call went out and the server would have cut the prompt.)"""
    route, payload = CONTEXTS[spec]
    server.routes[route] = reply(payload)
    model = get_model(spec, base_url=server.url)
    with pytest.raises(ContextTooSmall, match=r"needs about [\d,]+ tokens .* 4,096-token context: ") as caught:
        model.complete(Request("s", LONG, max_tokens=500))
    assert server.bodies == []
    assert model.preset.context_fix in str(caught.value)


def test_a_call_that_fits_goes_ahead(server):
    server.routes["GET /props"] = reply({"default_generation_settings": {"n_ctx": 8192}})
    server.behaviours.append(stream("fine"))
    assert get_model("llamacpp-server", base_url=server.url).complete(Request("s", LONG, max_tokens=500)).text == "fine"


def test_the_reserve_of_a_later_turn_counts(server):
    """A call whose own prompt and answer fit, but whose conversation's second call would not, is refused."""
    server.routes["GET /props"] = reply({"default_generation_settings": {"n_ctx": 2048}})
    model = get_model("llamacpp-server", base_url=server.url)
    short = Request("s", "A plan.", max_tokens=800)
    assert needed(short)[1] < 2048
    with pytest.raises(ContextTooSmall, match="for the step's second call"):
        model.complete(Request("s", "A plan.", max_tokens=800, reserve=1500))
    assert server.bodies == []


def test_an_unknown_context_lets_the_call_go_and_a_refusal_for_length_teaches_it(server):
    """llama-cpp-python's server says its context nowhere but in its refusal: that refusal is the same one line,
    and the next over-long call is refused before it is made."""
    server.behaviours.append(status(400, "This model's maximum context length is 2048 tokens. However, you requested "
                                         "4800 tokens (4300 in the messages, 500 in the completion)."))
    model = get_model("openai:smollm2", base_url=server.url)
    assert model.context_window() is None
    with pytest.raises(ContextTooSmall, match="2,048-token context"):
        model.complete(Request("s", LONG, max_tokens=500))
    assert model.context_window() == 2048
    with pytest.raises(ContextTooSmall):
        model.complete(Request("s", LONG, max_tokens=500))
    assert len(server.bodies) == 1


def test_a_stream_closed_without_an_event_is_asked_again_unstreamed_and_its_refusal_read(server):
    """llama-cpp-python's server answers an over-long streamed call with 200 and an empty stream; only the same call
    unstreamed says why (a 400 naming its context). Seen failing: "returned an empty answer", the context unlearned."""
    refusal = ("This model's maximum context length is 4096 tokens. However, you requested 5634 tokens "
               "(5618 in the messages, 16 in the completion).")
    server.behaviours += [stream("", raw=[]), status(400, refusal)]
    model = get_model("openai:smollm2", base_url=server.url)
    with pytest.raises(ContextTooSmall, match="4,096-token context"):
        model.complete(Request("s", LONG, max_tokens=16))
    assert [b["stream"] for b in server.bodies] == [True, False]
    assert "stream_options" not in server.bodies[1]
    assert model.context_window() == 4096


def test_llama_servers_context_refusal_is_read_from_its_n_ctx(server):
    server.behaviours.append(reply({"error": {"code": 400, "message": "the request exceeds the available context size, "
                                              "try increasing it", "type": "exceed_context_size_error",
                                              "n_prompt_tokens": 4400, "n_ctx": 4096}}, 400))
    model = get_model("openai:x", base_url=server.url)
    with pytest.raises(ContextTooSmall, match="4,096-token context"):
        model.complete(Request("s", LONG, max_tokens=100))


def test_a_step_that_cannot_finish_is_refused_before_its_first_call(server, tmp_path, capsys):
    """Through the CLI: a story written with the scripted model, then a step on a llama.cpp server whose context
    holds the paragraph call but not the step's second call. Refused before any POST, one line, exit 2, nothing
    written. (Seen failing with the reserve left out of the paragraph call: its POST went out.)"""
    db = str(tmp_path / "lib.db")
    assert main(["--db", db, "--model", "scripted", "--embedder", "hash", "new", "fantasy", "a dragon"]) == 0
    sid = capsys.readouterr().out.split("(story ")[1].split(")")[0]
    from recurrentgpt import HashingEmbedder, Loom, ScriptedModel

    recorder = ScriptedModel()
    loom = Loom.open(db, recorder, HashingEmbedder())
    loom.step(sid, 0)
    first, second = recorder.requests[:2]
    loom.close()
    # a context between what the paragraph call alone needs and what the whole step needs
    alone = needed(first)[1] - first.reserve
    whole = needed(second)[1]
    assert alone < whole <= needed(first)[1]  # the reserve covers the second call
    server.routes["GET /props"] = reply({"default_generation_settings": {"n_ctx": (alone + whole) // 2}})
    before = main(["--db", db, "--model", "scripted", "--embedder", "hash", "tree", sid])
    tree = capsys.readouterr().out
    code = main(["--db", db, "--model", "llamacpp-server", "--base-url", server.url, "--embedder", "hash",
                 "step", sid, "--plan", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and "Traceback" not in err and "-c" in err, err
    assert server.bodies == []
    assert main(["--db", db, "--model", "scripted", "--embedder", "hash", "tree", sid]) == before == 0
    assert capsys.readouterr().out == tree


def test_estimates_err_long():
    """Words at 1.35 tokens, a token per four characters at least, an ideograph 1.2."""
    assert estimate_tokens("one two three four") == 6
    assert estimate_tokens("x" * 400) == 100
    assert estimate_tokens("山" * 10) == 12


# -- Ollama, natively --------------------------------------------------------------------------------------------


def ollama(server, context_length=32768, models=("qwen2.5:7b",)):
    server.routes["POST /api/show"] = reply({"model_info": {"general.architecture": "qwen2",
                                                             "qwen2.context_length": context_length},
                                             "parameters": "num_ctx 2048"})
    server.routes["GET /api/tags"] = reply({"models": [{"name": m, "details": {"parameter_size": "7.6B",
                                                                               "quantization_level": "Q4_K_M"}}
                                                       for m in models]})


def test_ollama_is_asked_natively_with_num_ctx_a_schema_samplers_and_seed(server):
    """POST /api/chat, not /v1: num_ctx (the setting), the schema in `format`, the samplers in `options` under
    llama.cpp's names, the seed moving on each call; the NDJSON stream read as it comes; the token counts kept."""
    ollama(server)
    server.behaviours += [ndjson('{"a": "hello"}', prompt_eval_count=42, eval_count=7), ndjson('{"a": "again"}')]
    model = get_model("ollama:qwen2.5:7b", base_url=server.root, num_ctx=16384, seed=5)
    seen: list[str] = []
    sampling = Sampling(top_p=0.9, min_p=0.1, top_k=20, repeat_penalty=1.2, presence_penalty=0.3)
    out = model.complete(Request("sys", "hi", schema=SCHEMA, max_tokens=300, temperature=0.7, sampling=sampling),
                         seen.append)
    assert out.text == '{"a": "hello"}' and len(seen) > 1 and "".join(seen) == out.text
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (42, 7)
    body = server.bodies[0]
    assert "POST /api/chat" in server.paths and not any(p.startswith("POST /v1") for p in server.paths)
    assert body["format"] == SCHEMA and body["stream"] is True
    assert body["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
    assert body["options"] == {"num_ctx": 16384, "num_predict": 300, "temperature": 0.7, "top_p": 0.9, "min_p": 0.1,
                               "top_k": 20, "repeat_penalty": 1.2, "presence_penalty": 0.3, "seed": 5}
    model.complete(Request("sys", "hi", schema=SCHEMA))
    assert server.bodies[1]["options"]["seed"] == 6 and server.bodies[1]["options"]["num_ctx"] == 16384


def test_ollama_context_is_num_ctx_within_the_models_maximum_and_refused_before_the_call(server):
    ollama(server, context_length=4096)
    model = get_model("ollama:qwen2.5:7b", base_url=server.root)
    assert model.context_window() == 4096  # 8,192 asked for, the model takes 4,096
    with pytest.raises(ContextTooSmall, match="takes at most 4,096"):
        model.complete(Request("s", LONG, max_tokens=500))
    assert server.bodies == []
    ollama(server, context_length=131072)
    small = get_model("ollama:qwen2.5:7b", base_url=server.root, num_ctx=2048)
    with pytest.raises(ContextTooSmall, match=r"raise --num-ctx \(now 2,048"):
        small.complete(Request("s", LONG, max_tokens=500))
    assert server.bodies == []


def test_ollama_without_the_model_is_one_line_naming_the_pull(server):
    ollama(server, models=("llama3.2:latest", "nomic-embed-text:latest"))
    server.routes["POST /api/show"] = reply({"error": "model 'qwen3:8b' not found"}, 404)
    with pytest.raises(ConfigError, match=r"has no model 'qwen3:8b': `ollama pull qwen3:8b` \(it has: llama3.2:latest"):
        get_model("ollama:qwen3:8b", base_url=server.root).complete(Request("s", "p"))
    assert server.bodies == []


def test_an_ollama_address_that_answers_with_a_web_page_names_ollamas_own_address(server):
    """Ollama's address is its root, not an OpenAI-compatible /v1: the line must not send its user looking for one.
    Seen failing while every web page was told "an OpenAI-compatible server's usually ends in /v1"."""
    page = reply("<html><body>Welcome</body></html>", content_type="text/html")
    for route in ("GET /api/tags", "POST /api/show", "GET /api/ps"):
        server.routes[route] = page
    server.behaviours.append(page)
    with pytest.raises(ConfigError) as refused:
        get_model("ollama:m", base_url=server.root).complete(Request("s", "p"))
    assert "answered with a web page" in str(refused.value) and "/v1" not in str(refused.value)
    assert "Ollama's address is the server's root, e.g. http://127.0.0.1:11434 ($OLLAMA_HOST)" in str(refused.value)
    server.routes["POST /api/embed"] = page
    with pytest.raises(ConfigError, match=r"web page .*Ollama's address is the server's root"):
        get_embedder("ollama:nomic-embed-text", server_url=server.root).embed(["x"])


def test_ollama_length_stop_and_mid_stream_errors(server):
    ollama(server)
    server.behaviours += [ndjson("cut off here", done_reason="length"),
                          reply(b'{"message": {"content": "x"}, "done": false}\n{"error": "out of memory"}\n',
                                content_type="application/x-ndjson")]
    model = get_model("ollama:qwen2.5:7b", base_url=server.root)
    assert model.complete(Request("s", "p")).finish_reason == "length"
    with pytest.raises(Exception, match="Ollama failed mid-answer: out of memory"):
        model.complete(Request("s", "p"))


def test_ollama_address_comes_from_ollama_host(monkeypatch):
    from recurrentgpt.models.ollama import default_address

    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert default_address() == ("http://127.0.0.1:11434", "the ollama preset")
    for value, url in [("10.0.0.7", "http://10.0.0.7:11434"), ("0.0.0.0:11435", "http://127.0.0.1:11435"),
                       ("https://ollama.example:443", "https://ollama.example:443")]:
        monkeypatch.setenv("OLLAMA_HOST", value)
        assert default_address() == (url, "$OLLAMA_HOST")


# -- samplers and the seed ----------------------------------------------------------------------------------------

WIRE = {
    "llamacpp-server": {"top_p": 0.9, "min_p": 0.1, "top_k": 20, "repeat_penalty": 1.2, "presence_penalty": 0.3},
    "koboldcpp": {"top_p": 0.9, "min_p": 0.1, "top_k": 20, "repeat_penalty": 1.2, "presence_penalty": 0.3},
    "vllm:m": {"top_p": 0.9, "min_p": 0.1, "top_k": 20, "repetition_penalty": 1.2, "presence_penalty": 0.3},
    "lmstudio:m": {"top_p": 0.9, "top_k": 20, "repeat_penalty": 1.2, "presence_penalty": 0.3},
    "openai:m": {"top_p": 0.9, "presence_penalty": 0.3},
}


@pytest.mark.parametrize("spec", WIRE)
def test_samplers_and_seed_go_under_each_servers_own_names(server, spec):
    server.behaviours += [stream("one"), stream("two")]
    model = get_model(spec, base_url=server.url, seed=11)
    sampling = Sampling(top_p=0.9, min_p=0.1, top_k=20, repeat_penalty=1.2, presence_penalty=0.3)
    model.complete(Request("s", "p", sampling=sampling))
    model.complete(Request("s", "p", sampling=sampling))
    sent = {k: v for k, v in server.bodies[0].items() if k in {*WIRE[spec], "min_p", "top_k", "repeat_penalty",
                                                               "repetition_penalty", "seed"}}
    assert sent == {**WIRE[spec], "seed": 11}
    assert server.bodies[1]["seed"] == 12  # a retry of the same prompt is not the same draw


def test_a_server_that_refuses_an_extension_field_gets_the_standard_ones(server):
    server.behaviours += [status(400, "Unrecognized request argument supplied: min_p"), stream("ok"), stream("ok")]
    model = get_model("openrouter:m", base_url=server.url)
    model.complete(Request("s", "p", sampling=Sampling()))
    model.complete(Request("s", "p", sampling=Sampling()))
    assert "min_p" in server.bodies[0] and "min_p" not in server.bodies[1] and "top_k" not in server.bodies[2]
    assert server.bodies[2]["top_p"] == 0.95


def test_the_story_settings_and_seed_reach_the_server_from_the_command_line(server, tmp_path):
    """`--seed 1` (the evaluation recipe's) and a story's `--top-p` reach the server's first call. (Seen failing
    against the code before: neither was in the body.)"""
    server.routes["GET /props"] = reply({"default_generation_settings": {"n_ctx": 16384}})
    server.behaviours.append(status(400, "refused on purpose"))
    code = main(["--db", str(tmp_path / "l.db"), "--model", "llamacpp-server", "--base-url", server.url, "--seed", "1",
                 "--embedder", "hash", "new", "fantasy", "a dragon", "--top-p", "0.8", "--top-k-tokens", "30"])
    assert code != 0 and len(server.bodies) == 1
    body = server.bodies[0]
    assert (body["seed"], body["top_p"], body["top_k"], body["min_p"]) == (1, 0.8, 30, 0.05)


# -- bad answers ---------------------------------------------------------------------------------------------------


def test_a_server_that_answers_with_a_web_page_is_one_line_naming_the_address(server, tmp_path, capsys):
    server.behaviours.append(reply(b"<html><body>Welcome to the router</body></html>", content_type="text/html"))
    code = main(["--db", str(tmp_path / "l.db"), "--model", "openai:m", "--base-url", server.url, "--embedder", "hash",
                 "new", "fantasy", "a dragon"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "answered with a web page" in errors[0] and server.url in errors[0], err


def test_a_model_the_server_does_not_have_is_one_line_naming_what_it_has(server):
    server.routes["GET /v1/models"] = reply({"data": [{"id": "Qwen/Qwen2.5-7B-Instruct"}]})
    server.behaviours.append(status(404, "The model `qwen` does not exist."))
    with pytest.raises(ConfigError, match=r"has no model 'qwen' \(it lists: Qwen/Qwen2.5-7B-Instruct\)"):
        get_model("vllm:qwen", base_url=server.url).complete(Request("s", "p"))


# -- models and doctor ---------------------------------------------------------------------------------------------


def test_models_lists_what_the_server_has(server, capsys):
    ollama(server, models=("qwen2.5:7b", "nomic-embed-text:latest"))
    assert main(["--model", "ollama:qwen2.5:7b", "--base-url", server.root, "models"]) == 0
    assert capsys.readouterr().out.splitlines() == ["qwen2.5:7b  7.6B Q4_K_M", "nomic-embed-text:latest  7.6B Q4_K_M"]
    server.routes["GET /v1/models"] = reply({"data": [{"id": "Qwen/Qwen2.5-7B-Instruct", "max_model_len": 32768}]})
    assert main(["--base-url", server.url, "models", "vllm"]) == 0
    assert capsys.readouterr().out.splitlines() == ["Qwen/Qwen2.5-7B-Instruct  max_model_len 32768"]


def test_models_of_an_embedded_model_is_one_line(capsys):
    assert main(["--model", "smollm2", "models"]) == 2
    assert "runs in this process" in capsys.readouterr().err


def test_doctor_passes_a_good_server_line_by_line(server, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("RECURRENTGPT_CONFIG", str(tmp_path / "none.toml"))
    server.routes["GET /props"] = reply({"default_generation_settings": {"n_ctx": 16384}})
    server.routes["GET /v1/models"] = reply({"data": [{"id": "model.gguf"}]})
    server.behaviours += [stream("yes"), status(400, "unknown response_format json_schema"), stream('{"ok": "yes"}')]
    code = main(["--model", "openai:model.gguf", "--base-url", server.url, "--response-format", "auto",
                 "--embedder", "hash", "doctor"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0, out
    assert [line.split()[:2] for line in out] == [["ok", "server"], ["warn", "context"], ["ok", "call"],
                                                  ["ok", "json"], ["ok", "embedder"]]
    assert "takes json_object" in out[3] and "hash-256: 256 dimensions" in out[4]
    assert server.bodies[0]["max_tokens"] == 1


def test_doctor_fails_a_context_too_small_for_the_story(server, capsys, monkeypatch, tmp_path):
    """The paper's settings need ~5,000 tokens for the opening: a 4,096-token llama.cpp server fails, naming its
    fix, and doctor exits 1."""
    monkeypatch.setenv("RECURRENTGPT_CONFIG", str(tmp_path / "none.toml"))
    server.routes["GET /props"] = reply({"default_generation_settings": {"n_ctx": 4096}})
    server.routes["GET /v1/models"] = reply({"data": [{"id": "default"}]})
    server.behaviours += [stream("yes"), stream('{"ok": "yes"}')]
    code = main(["--model", "llamacpp-server", "--base-url", server.url, "--embedder", "hash", "doctor"])
    out = capsys.readouterr().out
    assert code == 1
    line = next(x for x in out.splitlines() if "context" in x.split()[1])
    assert line.startswith("FAIL") and "4,096 tokens (GET /props" in line and "the opening ~" in line
    assert "restart llama-server with a larger -c" in line


def test_doctor_fails_an_unreachable_server(capsys):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    code = main(["--model", "vllm:m", "--base-url", f"http://127.0.0.1:{port}/v1", "--embedder", "hash", "doctor"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1 and out[0].startswith("FAIL  server") and "connection refused" in out[0]
    assert out[-1].startswith("ok    embedder")


def test_story_needs_are_measured_on_the_cells_prompts():
    from recurrentgpt.doctor import story_needs
    from recurrentgpt.story import Settings

    paper = story_needs(Settings())
    short = story_needs(Settings(paragraph_sentences=6, memory_words=150, opening_paragraphs=1))
    assert set(paper) == {"opening", "step"} and all(short[k] < paper[k] for k in paper)
    assert 2000 < paper["step"] < 8192 and paper["opening"] > paper["step"]


# -- the samplers are story settings ------------------------------------------------------------------------------


def test_samplers_are_story_settings_and_checked():
    from recurrentgpt.story import Settings, sampling_problems

    s = Settings.from_dict({"top_p": 0.9, "top_k_tokens": 0, "repeat_penalty": 1.0})
    assert s.sampling == Sampling(top_p=0.9, min_p=0.05, top_k=0, repeat_penalty=1.0, presence_penalty=0.0)
    assert sampling_problems(Settings()) == []
    assert sampling_problems(Settings(top_p=0.0, repeat_penalty=5.0)) == [
        "top-p must be above 0 and at most 1", "the repeat penalty must be between 0.5 and 2"]
    json.dumps(s.to_dict())


def test_a_proxys_error_page_while_a_server_restarts_is_retried(server):
    """An HTML page with a 502 is an outage to retry, not a wrong address."""
    server.behaviours += [reply(b"<html>502 Bad Gateway</html>", 502, "text/html"), stream("fine")]
    model = get_model("openai:m", base_url=server.url)
    model.client.backoff = 0.01
    assert model.complete(Request("s", "p")).text == "fine" and len(server.bodies) == 2


def test_samplers_out_of_range_are_one_line_before_any_call(tmp_path, capsys):
    code = main(["--db", str(tmp_path / "l.db"), "--model", "scripted", "--embedder", "hash", "new", "noir", "x",
                 "--top-p", "0"])
    err = capsys.readouterr().err
    assert code == 2 and [line for line in err.splitlines() if line.startswith("error")] == [
        "error: top-p must be above 0 and at most 1"]
    assert main(["--db", str(tmp_path / "l.db"), "--model", "scripted", "--embedder", "hash", "list"]) == 0
    assert "noir" not in capsys.readouterr().out
