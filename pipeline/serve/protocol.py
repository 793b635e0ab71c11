"""uvicorn's httptools protocol with the bounds a server on a network needs.

uvicorn bounds neither the size of a request head nor the time a client takes to send it, and holds a
connection that never sends a byte for as long as the client likes. :class:`BoundedHttpProtocol` adds:

- ``serve.max_header_bytes``: request line plus headers over it are answered ``431`` and closed;
- ``serve.read_timeout_s``: a request (head and body) not received within it is answered ``408`` and
  closed, so a half-sent body cannot hold a connection;
- ``serve.idle_timeout_s``: a connection that sends nothing, before its first request or between two,
  is closed after it (uvicorn's keep-alive timeout, also armed on a fresh connection).

``distill serve`` runs uvicorn with :func:`protocol_class` (``http=``); the connection cap is uvicorn's
own ``limit_concurrency`` (``serve.max_connections``, answered ``503``).
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("distill.serve")

_STATUS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class BoundedHttpProtocol(HttpToolsProtocol):
    max_header_bytes = 16_384
    read_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._refusal: int | None = None
        self._read_timer: asyncio.TimerHandle | None = None
        # idle before the first request too (uvicorn arms this only after a response)
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        super().connection_lost(exc)

    # -- the head's size -------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._cancel_read_timer()
        self._read_timer = self.loop.call_later(self.read_timeout_s, self._read_timed_out)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self.max_header_bytes:
            self._refusal = 431
            raise ValueError("request head over serve.max_header_bytes")  # httptools stops parsing here

    def send_400_response(self, msg: str) -> None:
        if self._refusal == 431:
            log.warning("refused a request head over serve.max_header_bytes = %d", self.max_header_bytes)
            self._refuse(431, f"request line and headers are over the limit serve.max_header_bytes = "
                              f"{self.max_header_bytes}")
            return
        super().send_400_response(msg)

    # -- the time to send a request --------------------------------------------------------------------

    def on_message_complete(self) -> None:
        self._cancel_read_timer()
        super().on_message_complete()

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        log.warning("closed a connection that took over serve.read_timeout_s = %.1f s to send its request",
                    self.read_timeout_s)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app waiting for the body sees the client gone
            self.cycle.message_event.set()
            if self.cycle.response_started:
                self.transport.close()
                return
        self._refuse(408, f"request not received within serve.read_timeout_s = {self.read_timeout_s:g} s")

    def _cancel_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _refuse(self, status: int, message: str) -> None:
        body = ('{"error": "%s"}' % message).encode()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _STATUS[status])]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def protocol_class(cfg) -> type[BoundedHttpProtocol]:
    """A protocol class carrying the limits of a ``serve`` section (uvicorn builds one per connection)."""
    return type("DistillHttpProtocol", (BoundedHttpProtocol,),
                {"max_header_bytes": cfg.max_header_bytes, "read_timeout_s": cfg.read_timeout_s})
