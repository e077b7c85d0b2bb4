"""A TCP forwarder whose outgoing connections come from another loopback address: a browser on this machine
seen by the console as a different computer (127.0.0.2), or a console that is slow for the pages it already
serves (``hold()``) while it still answers new requests. Loopback only; stopped with the test."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

__all__ = ["Proxy", "source_proxy"]


class _Flow(threading.Event):
    """Whether one connection forwards now; ``websocket``: the client asked for an upgrade."""

    websocket = False


class Proxy(str):
    """The base URL to open; :meth:`hold` stops forwarding on the websockets open now (plain requests and new
    connections still flow), :meth:`release` lets them go on (what was held is delivered then)."""

    flows: list[_Flow]

    def hold(self) -> None:
        for flow in list(self.flows):
            if flow.websocket:
                flow.clear()

    def release(self) -> None:
        for flow in list(self.flows):
            flow.set()


def _pipe(a: socket.socket, b: socket.socket, flow: _Flow, *, from_client: bool) -> None:
    try:
        while data := a.recv(65536):
            if from_client and not flow.websocket and b"upgrade: websocket" in data.lower():
                flow.websocket = True
            flow.wait()
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def source_proxy(listen_port: int, target_port: int, source: str = "127.0.0.2") -> Iterator[Proxy]:
    """Listen on 127.0.0.1:``listen_port``; forward each connection to 127.0.0.1:``target_port`` from
    ``source``. Yields the base URL to open (``http://127.0.0.1:<listen_port>``) as a :class:`Proxy`."""
    server = socket.create_server(("127.0.0.1", listen_port))
    server.settimeout(0.2)
    stop = threading.Event()
    conns: list[socket.socket] = []
    proxy = Proxy(f"http://127.0.0.1:{listen_port}")
    proxy.flows = []

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
            try:
                upstream.connect(("127.0.0.1", target_port))
            except OSError:  # nobody serves there (now): the client sees its connection closed
                for s in (client, upstream):
                    s.close()
                continue
            conns.extend((client, upstream))
            flow = _Flow()
            flow.set()
            proxy.flows.append(flow)
            for a, b, out in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=_pipe, args=(a, b, flow), kwargs={"from_client": out}, daemon=True).start()

    thread = threading.Thread(target=serve, name="source-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.release()
        stop.set()
        thread.join(5)
        server.close()
        for s in conns:
            with contextlib.suppress(OSError):
                s.close()
