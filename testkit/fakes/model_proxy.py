"""A real HTTP proxy in front of a model server: records every request, can answer the next ones with an error
status (429, 503) before passing requests on, can drop the logprobs from answers (as a server without them would
answer), and counts how many are in flight at once."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import httpx


class LocalModelServer:
    """An HTTP server on a free port of 127.0.0.1, serving on a thread while its `with` block runs; `url` is the
    OpenAI API root on it."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


class ModelProxy(LocalModelServer):
    """`url` is the OpenAI API root through the proxy; `requests` holds (path, JSON body) in arrival order."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")  # the server's root, without /v1
        self.requests: list[tuple[str, dict]] = []
        self.refuse: list[int] = []  # statuses the next requests get instead of an answer, in order
        self.drop_logprobs = False  # answers come without logprobs
        self.openai_only = False  # llama.cpp's own endpoints (/apply-template) answer 404, as on vLLM or Ollama
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def bodies(self, path: str) -> list[dict]:
        return [body for p, body in self.requests if p.endswith(path)]

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self._pass_on(None)

            def do_POST(self) -> None:
                self._pass_on(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def _pass_on(self, body: bytes | None) -> None:
                with proxy._lock:
                    proxy.requests.append((self.path, json.loads(body) if body else {}))
                    status = proxy.refuse.pop(0) if proxy.refuse else None
                    if proxy.openai_only and not self.path.startswith("/v1/"):
                        status = 404
                    proxy.in_flight += 1
                    proxy.most_in_flight = max(proxy.most_in_flight, proxy.in_flight)
                try:
                    if status is not None:
                        self.send_response(status)
                        self.send_header("Retry-After", "0")
                        self.end_headers()
                        self.wfile.write(b'{"error": {"message": "injected by the proxy"}}')
                        return
                    headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                    with httpx.stream(self.command, proxy.upstream + self.path, content=body, headers=headers,
                                      timeout=120) as answer:
                        self.send_response(answer.status_code)
                        self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                        self.end_headers()
                        if proxy.drop_logprobs and not (body and json.loads(body).get("stream")):
                            answered = json.loads(answer.read())
                            for choice in answered.get("choices", []):
                                choice.pop("logprobs", None)
                            self.wfile.write(json.dumps(answered).encode())
                            return
                        for chunk in answer.iter_raw():  # server-sent events pass through as they come
                            self.wfile.write(chunk)
                            self.wfile.flush()
                finally:
                    with proxy._lock:
                        proxy.in_flight -= 1

        return Handler
