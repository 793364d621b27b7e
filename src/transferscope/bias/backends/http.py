"""HTTP for the server backends: one total deadline per request and a cap on every reply.

httpx's timeouts bound each network operation (a read that waits more than ``read`` seconds),
not a request: a server that drips a byte a second is never cut off. :class:`HTTPClient` gives
each request a *total* deadline, connect and every read and write together: the sockets it
opens clamp each operation's timeout to the time left before the deadline (an httpcore network
backend, so the headers, which httpx reads before returning, are bounded too), and a request
past its deadline fails with :class:`DeadlineExceeded`. A reply body is read in chunks and
refused as soon as it passes ``max_reply_bytes`` (a ``Content-Length`` above it is refused
before reading): a runaway server costs at most the cap in memory, held once.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from transferscope.core.bounded import size_text

REPLY_CAP = 16 * 2**20  # bytes of one reply body (a chat answer is a few KiB)

_local = threading.local()


class DeadlineExceeded(httpx.TimeoutException):
    """The request did not complete within its total deadline."""


class ReplyTooLarge(httpx.HTTPError):
    """The server's reply body is longer than the cap."""


@contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Every socket operation of this thread inside the block ends by ``seconds`` from now."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = time.monotonic() + seconds
    try:
        yield _local.deadline
    finally:
        _local.deadline = previous


def _clamp(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` shortened to the time left before this thread's deadline (if any)."""
    end = getattr(_local, "deadline", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error("the request's total deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write ends by the thread's deadline."""

    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(
            ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """The pool's own sockets (httpcore's), connected and used within the deadline."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_tcp(
            host, port, _clamp(timeout, httpcore.ConnectTimeout), local_address,
            socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(
            path, _clamp(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@dataclass(frozen=True)
class HTTPReply:
    """A complete reply: status, headers and the body's bytes (held once)."""

    status: int
    headers: httpx.Headers
    body: bytes

    def text(self, limit: int | None = None) -> str:
        """The body as text (undecodable bytes replaced), the first ``limit`` bytes of it."""
        return (self.body if limit is None else self.body[:limit]).decode("utf-8", "replace")


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``, ``NO_PROXY``, ... as
    urllib reads them), or None: what httpx would use, kept with our own transport."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


class HTTPClient:
    """httpx with a total deadline per request and a reply cap (see the module docstring),
    for requests to ``base_url`` (through the proxy the environment names for it, if any).

    ``auth`` is sent on every request (e.g. the user:password a URL carried, kept out of the
    URL so the URL can be shown and stored)."""

    def __init__(self, base_url: str, *, deadline_s: float, max_connections: int,
                 headers: dict[str, str] | None = None, auth: httpx.Auth | None = None,
                 max_reply_bytes: int | None = None):
        self.deadline_s = float(deadline_s)
        self.max_reply_bytes = REPLY_CAP if max_reply_bytes is None else int(max_reply_bytes)
        transport = httpx.HTTPTransport(limits=httpx.Limits(max_connections=max_connections),
                                        proxy=environment_proxy(base_url))
        # httpx takes no network backend: its pool's (direct or proxy) is wrapped in place.
        pool = transport._pool
        pool._network_backend = _DeadlineBackend(pool._network_backend)
        self._client = httpx.Client(transport=transport, headers=headers or {}, auth=auth,
                                    timeout=httpx.Timeout(self.deadline_s),
                                    follow_redirects=False)

    def request(self, method: str, url: str, json: Any = None) -> HTTPReply:
        """One request, completed (body read) within the deadline and the cap; raises
        :class:`DeadlineExceeded`, :class:`ReplyTooLarge` or another ``httpx.HTTPError``."""
        with deadline(self.deadline_s) as end:
            try:
                with self._client.stream(method, url, json=json) as response:
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self.max_reply_bytes:
                        raise ReplyTooLarge(f"the reply declares {int(declared):,} bytes: "
                                            f"expected at most {size_text(self.max_reply_bytes)}"
                                            " (the cap on one reply)")
                    chunks, size = [], 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > self.max_reply_bytes:
                            raise ReplyTooLarge(f"the reply is longer than "
                                                f"{size_text(self.max_reply_bytes)} (the cap on "
                                                "one reply)")
                        chunks.append(chunk)
                        if time.monotonic() > end:
                            raise DeadlineExceeded("the request's total deadline passed")
                    return HTTPReply(response.status_code, response.headers, b"".join(chunks))
            except httpx.TimeoutException as exc:
                if time.monotonic() >= end and not isinstance(exc, DeadlineExceeded):
                    raise DeadlineExceeded("the request's total deadline passed") from exc
                raise

    def close(self) -> None:
        self._client.close()
