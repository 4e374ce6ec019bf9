"""The OpenAI and Anthropic generators against real HTTP servers that speak their wire.

Each test starts an http.server on 127.0.0.1 that answers with scripted replies (a good
answer, a stall, garbage, an error status) and records what datawheel sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from datawheel.config import GenerationConfig
from datawheel.errors import ConfigError
from datawheel.models.generators import (
    FallbackGenerator,
    Generation,
    Generator,
    GeneratorError,
    Passage,
    load_generator,
)
from datawheel.models.generators.anthropic import AnthropicGenerator
from datawheel.models.generators.base import DECLINE_TEXT
from datawheel.models.generators.openai import OpenAIGenerator

PASSAGES = [
    Passage(1, "c1", "Geography", "France", "Paris is the capital of France.", 0.9),
    Passage(2, "c2", "Geography", "", "Paris has about two million inhabitants.", 0.7),
]


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict is sent as JSON, a str as it is
    delay_s: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any


class FakeServer:
    """Answers the n-th POST with replies[n] (the last one repeats) and records each request."""

    def __init__(self, replies: Sequence[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[Received] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append(
                    Received(
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        json.loads(raw),
                    )
                )
                reply = server.replies[min(len(server.requests), len(server.replies)) - 1]
                time.sleep(reply.delay_s)
                body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body.encode())))
                    self.end_headers()
                    self.wfile.write(body.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting, as it should

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Wire:
    provider: str
    path: str  # what the generator must POST to
    answer: Callable[[str], dict[str, Any]]  # the server's JSON for an answer text

    def config(self, server: FakeServer, **settings: Any) -> GenerationConfig:
        base_url = server.url + ("/v1" if self.provider == "openai" else "")
        settings = {"timeout_s": 0.5, "retries": 1, **settings}
        return GenerationConfig(
            provider=self.provider, model="test-model", base_url=base_url, **settings
        )

    def generator(self, server: FakeServer, **settings: Any) -> Generator:
        """The bare generator, without the fallback, to see its errors."""
        config = self.config(server, **settings)
        return OpenAIGenerator(config) if self.provider == "openai" else AnthropicGenerator(config)


WIRES = {
    "openai": Wire(
        "openai",
        "/v1/chat/completions",
        lambda text: {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        },
    ),
    "anthropic": Wire(
        "anthropic",
        "/v1/messages",
        lambda text: {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
        },
    ),
}


class FixedGenerator:
    name = "fixed"

    def generate(
        self, question: str, passages: Sequence[Passage], *, confidence: float = 1.0
    ) -> Generation:
        return Generation(text="From the fallback [1].", cited=[1], generator=self.name)


@pytest.fixture(params=sorted(WIRES))
def wire(request: pytest.FixtureRequest) -> Wire:
    return WIRES[request.param]


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeServer]]:
    servers: list[FakeServer] = []

    def start(*replies: Reply) -> FakeServer:
        servers.append(FakeServer(replies))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_answer_with_citations(wire: Wire, serve: Callable[..., FakeServer]) -> None:
    server = serve(Reply(body=wire.answer("Paris is the capital [1]; it is big [2][1].")))
    gen = load_generator(wire.config(server, max_tokens=64, temperature=0.2), FixedGenerator())

    result = gen.generate("What is the capital of France?", PASSAGES)

    assert result.text == "Paris is the capital [1]; it is big [2][1]."
    assert result.cited == [1, 2]
    assert result.generator == gen.name == f"{wire.provider}:test-model"
    assert not result.declined and result.warnings == []
    [sent] = server.requests
    assert sent.path == wire.path
    assert sent.body["model"] == "test-model"
    assert sent.body["max_tokens"] == 64
    assert sent.body["temperature"] == 0.2
    messages = sent.body["messages"]
    if wire.provider == "anthropic":
        assert "Cite every claim" in sent.body["system"]
        assert sent.headers["anthropic-version"] == "2023-06-01"
    else:
        assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[-1]["role"] == "user"
    assert "[2] Geography\nParis has about two million" in messages[-1]["content"]
    assert "Question: What is the capital of France?" in messages[-1]["content"]


def test_the_prompt_carries_the_selected_evidence(
    wire: Wire, serve: Callable[..., FakeServer], tmp_path: Path
) -> None:
    """With the extractive generator as the fallback, the LLM is shown the sentence the
    answer selector would quote, cited, before the question."""
    from datawheel.models.generators.extractive import ExtractiveGenerator
    from datawheel.store.keyword import BM25Index

    server = serve(Reply(body=wire.answer("Paris [1].")))
    extractive = ExtractiveGenerator(BM25Index(tmp_path / "bm25").tokenize)
    gen = load_generator(wire.config(server), extractive)

    gen.generate("How many people live in Paris?", PASSAGES)

    [sent] = server.requests
    content = sent.body["messages"][-1]["content"]
    assert "The sentences most likely to answer:\n- Paris has about two million" in content
    assert content.index("most likely to answer") < content.index("Question: How many")


def test_timeout_is_retried_then_raises(wire: Wire, serve: Callable[..., FakeServer]) -> None:
    server = serve(Reply(body=wire.answer("too late"), delay_s=1.5))
    with pytest.raises(GeneratorError) as caught:
        wire.generator(server).generate("q?", PASSAGES)

    assert str(caught.value) == (
        f"{wire.provider} server at {server.url}{wire.path} timed out after 0.5s; tried 2 "
        "times; check that the server is up and not overloaded, or raise generation.timeout_s"
    )
    assert len(server.requests) == 2


def test_fallback_answers_with_a_visible_warning(
    wire: Wire, serve: Callable[..., FakeServer]
) -> None:
    server = serve(Reply(body=wire.answer("too late"), delay_s=1.5))
    gen = load_generator(wire.config(server, retries=0), FixedGenerator())
    assert isinstance(gen, FallbackGenerator)

    result = gen.generate("q?", PASSAGES)

    assert result.text == "From the fallback [1]."
    assert result.generator == "fixed"
    assert result.warnings == [
        f"{wire.provider} server at {server.url}{wire.path} timed out after 0.5s; "
        "answered with the fixed generator instead"
    ]


@pytest.mark.parametrize("body", ["<html>not json</html>", {"unexpected": []}])
def test_malformed_answer_is_retried_then_raises(
    wire: Wire, serve: Callable[..., FakeServer], body: Any
) -> None:
    server = serve(Reply(body=body))

    with pytest.raises(GeneratorError, match="returned malformed JSON") as caught:
        wire.generator(server).generate("q?", PASSAGES)

    assert f"{wire.provider} server at {server.url}{wire.path}" in str(caught.value)
    assert f"check that generation.base_url is right for provider {wire.provider}" in str(
        caught.value
    )
    assert len(server.requests) == 2


def test_server_error_then_success(wire: Wire, serve: Callable[..., FakeServer]) -> None:
    server = serve(Reply(500, {"error": "overloaded"}), Reply(body=wire.answer("Paris [1].")))
    started = time.monotonic()

    result = load_generator(wire.config(server, retries=3), FixedGenerator()).generate(
        "q?", PASSAGES
    )

    assert result.text == "Paris [1]." and result.warnings == []
    assert len(server.requests) == 2
    assert time.monotonic() - started >= 0.5  # the first backoff


def test_unauthorized_is_not_retried(wire: Wire, serve: Callable[..., FakeServer]) -> None:
    server = serve(Reply(401, {"error": {"message": "invalid api key"}}))
    with pytest.raises(GeneratorError) as caught:
        wire.generator(server, retries=3).generate("q?", PASSAGES)

    assert len(server.requests) == 1
    assert str(caught.value) == (
        f"{wire.provider} server at {server.url}{wire.path} answered HTTP 401: "
        '{"error": {"message": "invalid api key"}}; check generation.api_key '
        "(an env:VAR_NAME whose variable holds a valid key)"
    )


def test_api_key_header_from_env(
    wire: Wire, serve: Callable[..., FakeServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAWHEEL_TEST_LLM_KEY", "sk-test-123")
    server = serve(Reply(body=wire.answer("Paris [1].")))
    gen = load_generator(
        wire.config(server, api_key="env:DATAWHEEL_TEST_LLM_KEY"), FixedGenerator()
    )

    gen.generate("q?", PASSAGES)

    headers = server.requests[0].headers
    if wire.provider == "openai":
        assert headers["authorization"] == "Bearer sk-test-123"
    else:
        assert headers["x-api-key"] == "sk-test-123"
        assert "authorization" not in headers


def test_unset_api_key_variable_is_a_config_error(wire: Wire) -> None:
    config = GenerationConfig(
        provider=wire.provider, model="m", api_key="env:DATAWHEEL_TEST_UNSET_KEY"
    )
    with pytest.raises(ConfigError, match="environment variable DATAWHEEL_TEST_UNSET_KEY"):
        load_generator(config, FixedGenerator())


def test_missing_model_is_a_config_error(wire: Wire) -> None:
    with pytest.raises(
        ConfigError, match=f"generation.model is required for provider {wire.provider}"
    ):
        load_generator(GenerationConfig(provider=wire.provider, api_key="x"), FixedGenerator())


@pytest.mark.parametrize("text", [DECLINE_TEXT, "I don't know based on the available sources"])
def test_decline(wire: Wire, serve: Callable[..., FakeServer], text: str) -> None:
    server = serve(Reply(body=wire.answer(f"  {text}\n")))

    result = load_generator(wire.config(server), FixedGenerator()).generate("q?", PASSAGES)

    assert result.declined
    assert result.cited == []


def test_unreachable_server(wire: Wire, serve: Callable[..., FakeServer]) -> None:
    server = serve(Reply())
    server.close()  # nothing listens on the port any more

    result = load_generator(wire.config(server, retries=0), FixedGenerator()).generate(
        "q?", PASSAGES
    )

    assert result.generator == "fixed"
    assert result.warnings[0].startswith(f"{wire.provider} server at {server.url}{wire.path} ")
    assert "could not be reached (ConnectError" in result.warnings[0]


def test_extractive_returns_the_fallback_itself() -> None:
    fallback = FixedGenerator()
    assert load_generator(GenerationConfig(), fallback) is fallback
