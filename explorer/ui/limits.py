"""A cap on the size of every request body but uploads. Gradio keeps each event's raw input
values in the session, before any handler can check them, so a 40 MB "model name" would stay in
memory however short the reply; no event of this page needs more than a few kilobytes (images
travel through the upload route, which has its own limit, ``max_file_size``)."""

from __future__ import annotations

import json

MAX_BODY_BYTES = 1 * 2**20
EXEMPT_SUFFIXES = ("/upload",)


class BodyLimit:
    """ASGI middleware: 413 for a declared ``Content-Length`` over ``max_bytes``; a body that
    grows past it without one is cut off (the app sees the client disconnect)."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES, exempt: tuple[str, ...] = EXEMPT_SUFFIXES):
        self.app, self.max_bytes, self.exempt = app, max_bytes, exempt

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path", "").endswith(self.exempt):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._refuse(send)
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    return {"type": "http.disconnect"}
            return message

        return await self.app(scope, counting_receive, send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"error": f"Request body over {self.max_bytes // 2**10} KB: upload images through "
                                    "the upload route instead."}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
