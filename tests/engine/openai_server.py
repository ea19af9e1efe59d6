"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions protocol.

It serves recorded responses in order and keeps every request body, so tests can check
what the engine sent. `fail_first` answers that many requests with HTTP 500 first (to
exercise retries); `always=(status, body)` answers every request with that (an endpoint
answering 500 forever, or garbage). This is the only stand-in in the test suite: the hosted API cannot be
reached from here.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RecordedChatServer:
    def __init__(self, responses: list[str], fail_first: int = 0, model_echo: bool = True,
                 always: tuple[int, bytes] | None = None, responder=None):
        self.responder = responder  # request body -> answer text, for answers that depend on the request
        self.responses = list(responses)
        self.requests: list[dict] = []
        self.fail_first = fail_first
        self.always = always        # (status, body) for every request: an endpoint gone wrong
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                if not self.path.endswith("/chat/completions"):
                    self.send_error(404)
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if server.always is not None:
                    server.requests.append(body)
                    code, data = server.always
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                with server._lock:
                    if server.fail_first > 0:
                        server.fail_first -= 1
                        self._json(500, {"error": {"message": "recorded transient failure", "type": "server_error"}})
                        return
                    server.requests.append(body)
                    if server.responder is not None:
                        server.responses.append(server.responder(body))
                    if not server.responses:
                        self._json(400, {"error": {"message": "no more recorded responses", "type": "invalid_request_error"}})
                        return
                    content = server.responses.pop(0)
                prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
                self._json(200, {
                    "id": f"chatcmpl-{len(server.requests)}", "object": "chat.completion",
                    "created": int(time.time()), "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(content.split()),
                              "total_tokens": prompt_tokens + len(content.split())}})

            def _json(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
