"""The OpenAI-compatible backend against a local fake server: success, timeout, 5xx, retries."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List

import pytest
from conftest import make_config

from knowledge.assistant import KnowledgeAssistant
from knowledge.generate import (
    GenerationError,
    GenerationTimeout,
    OpenAICompatibleGenerator,
    get_generator,
)


class FakeServer:
    """``/v1/chat/completions`` answering from a script of behaviours, one per request."""

    def __init__(self) -> None:
        self.script: List[Dict[str, Any]] = []
        self.requests: List[Dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                server.requests.append({"path": self.path, "body": body,
                                        "auth": self.headers.get("Authorization")})
                step = server.script.pop(0) if server.script else {"reply": "ok"}
                if step.get("sleep"):
                    time.sleep(step["sleep"])
                status = step.get("status", 200)
                payload = ({"choices": [{"message": {"role": "assistant",
                                                     "content": step.get("reply", "")}}],
                            "usage": {"prompt_tokens": 321, "completion_tokens": 12}}
                           if status == 200 else {"error": "boom"})
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_server():
    server = FakeServer()
    yield server
    server.close()


def openai_config(tmp_path, url, **openai):
    settings = {"base_url": url, "model": "test-model", "timeout_s": 0.5, "max_retries": 2,
                "retry_backoff_s": 0.05}
    settings.update(openai)
    return make_config(tmp_path, generation={"backend": "openai", "timeout_s": 5.0,
                                             "max_new_tokens": 64, "openai": settings})


def test_success(fake_server, tmp_path, monkeypatch):
    monkeypatch.setenv("CSBOT_LLM_API_KEY", "sk-test")
    config = openai_config(tmp_path, fake_server.url)
    generator = get_generator(config)
    assert isinstance(generator, OpenAICompatibleGenerator)
    fake_server.script = [{"reply": "Refunds take 5-7 business days [1]."}]
    result = generator.generate([{"role": "user", "content": "hi"}])
    assert result.text == "Refunds take 5-7 business days [1]."
    assert result.completion_tokens == 12 and result.prompt_tokens == 321
    request = fake_server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "test-model" and request["body"]["max_tokens"] == 64
    assert request["auth"] == "Bearer sk-test"


def test_grounded_reply_through_the_assistant(fake_server, tmp_path, real_index):
    config = openai_config(tmp_path, fake_server.url)
    assistant = KnowledgeAssistant(config, retriever=real_index.retriever)
    fake_server.script = [{"reply": "Refunds reach your card within 5-7 business days [1]."}]
    answer = assistant.answer("how long do refunds take to reach my card?")
    assert answer.kind == "generated", answer.fallback_reason
    assert answer.text.endswith("[1].") and answer.sources[0]["url"]
    messages = fake_server.requests[0]["body"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "[1] " in messages[1]["content"]


def test_timeout_gives_the_extractive_answer(fake_server, tmp_path, real_index):
    config = openai_config(tmp_path, fake_server.url, max_retries=1)
    fake_server.script = [{"sleep": 1.5, "reply": "too late"}, {"sleep": 1.5, "reply": "late"}]
    generator = get_generator(config)
    started = time.perf_counter()
    with pytest.raises(GenerationTimeout):
        generator.generate([{"role": "user", "content": "hi"}])
    assert time.perf_counter() - started < 3.0
    assert len(fake_server.requests) == 2  # one retry after the first timeout

    fake_server.requests.clear()
    fake_server.script = [{"sleep": 1.5}, {"sleep": 1.5}]
    assistant = KnowledgeAssistant(config, retriever=real_index.retriever)
    answer = assistant.answer("how long do refunds take to reach my card?")
    assert answer.kind == "extractive" and answer.fallback_reason.startswith("timeout")
    assert answer.text.startswith("From ") and answer.sources


def test_server_error_is_retried_then_extractive(fake_server, tmp_path, real_index):
    config = openai_config(tmp_path, fake_server.url, max_retries=2)
    fake_server.script = [{"status": 500}, {"status": 503}, {"status": 500}]
    assistant = KnowledgeAssistant(config, retriever=real_index.retriever)
    answer = assistant.answer("how long do refunds take to reach my card?")
    assert len(fake_server.requests) == 3  # the first try and two retries
    assert answer.kind == "extractive" and answer.fallback_reason.startswith("backend error")
    assert "HTTP 500" in answer.fallback_reason


def test_server_error_then_success(fake_server, tmp_path):
    config = openai_config(tmp_path, fake_server.url, max_retries=2)
    fake_server.script = [{"status": 502}, {"reply": "Hello [1]"}]
    result = get_generator(config).generate([{"role": "user", "content": "hi"}])
    assert result.text == "Hello [1]" and len(fake_server.requests) == 2


def test_client_errors_are_not_retried(fake_server, tmp_path):
    config = openai_config(tmp_path, fake_server.url, max_retries=3)
    fake_server.script = [{"status": 400}]
    with pytest.raises(GenerationError, match="HTTP 400"):
        get_generator(config).generate([{"role": "user", "content": "hi"}])
    assert len(fake_server.requests) == 1


def test_unreachable_endpoint(tmp_path, real_index):
    config = openai_config(tmp_path, "http://127.0.0.1:9/v1", max_retries=1)
    answer = KnowledgeAssistant(config, retriever=real_index.retriever).answer(
        "how long do refunds take to reach my card?")
    assert answer.kind == "extractive" and "backend error" in answer.fallback_reason
