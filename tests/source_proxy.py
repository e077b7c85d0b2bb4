"""A TCP forwarder whose outgoing connections come from another loopback address: a browser on this machine
seen by the console as a different computer (127.0.0.2). Loopback only; stopped with the test."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

__all__ = ["source_proxy"]


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def source_proxy(listen_port: int, target_port: int, source: str = "127.0.0.2") -> Iterator[str]:
    """Listen on 127.0.0.1:``listen_port``; forward each connection to 127.0.0.1:``target_port`` from
    ``source``. Yields the base URL to open (``http://127.0.0.1:<listen_port>``)."""
    server = socket.create_server(("127.0.0.1", listen_port))
    server.settimeout(0.2)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.socket()
            upstream.bind((source, 0))  # the console sees this address as the browser's
            upstream.connect(("127.0.0.1", target_port))
            conns.extend((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, name="source-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listen_port}"
    finally:
        stop.set()
        thread.join(5)
        server.close()
        for s in conns:
            with contextlib.suppress(OSError):
                s.close()
