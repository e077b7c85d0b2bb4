"""Notification sinks: MQTT per priority and HTTP webhooks (HMAC-signed), each with retries and a dead letter.

The engine decides *what* to notify (activations, escalation steps) from engine state, deterministically;
this module delivers, at the edge, in its own threads, so a sink that is slow or down never blocks the engine.
Every attempt's result goes back to the engine as an input (``notification_result``), which journals it:
the journal holds each attempt, and a notice that failed every attempt is journaled as a dead letter.
The console sink is the engine's ``alarm.notify`` publication (banner and sound on the pages).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any, Protocol

__all__ = ["Notice", "Sink", "MqttSink", "WebhookSink", "Notifier", "sign", "SIGNATURE_HEADER"]

SIGNATURE_HEADER = "X-Watchfloor-Signature"


@dataclass(frozen=True)
class Notice:
    """One thing to tell people: an activation or an escalation step. ``id`` is ``<input_seq>.<k>``."""

    id: str
    kind: str  # "activate" | "escalate"
    alarm: str
    priority: str
    ts_s: float
    message: dict[str, str]
    notify_role: str | None = None
    step: int | None = None

    def payload(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class Sink(Protocol):
    name: str

    def wants(self, notice: Notice) -> bool: ...

    def deliver(self, notice: Notice) -> None:
        """Deliver or raise with the reason."""


class MqttSink:
    """Publishes every notice on ``<prefix>/alarms/<priority>`` (QoS 1, waits for the broker's PUBACK)."""

    name = "mqtt"

    def __init__(self, host: str, port: int, prefix: str, *, timeout_s: float = 5.0,
                 username: str | None = None, password: str | None = None) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.prefix = prefix.rstrip("/")
        self.timeout_s = timeout_s
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watchfloor-notify-{os.getpid()}")
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 30)
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()

    def wants(self, notice: Notice) -> bool:
        return True

    def deliver(self, notice: Notice) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self.client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.02)  # (re)connecting: paho retries with backoff in its own thread
        info = self.client.publish(f"{self.prefix}/alarms/{notice.priority}", notice.payload(), qos=1)
        if info.rc != 0:
            raise ConnectionError(f"MQTT publish refused (rc {info.rc})")
        info.wait_for_publish(self.timeout_s)
        if not info.is_published():
            raise TimeoutError(f"MQTT broker did not acknowledge within {self.timeout_s} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class WebhookSink:
    """POSTs escalations as JSON with ``X-Watchfloor-Signature: sha256=<hmac>``; 2xx is success."""

    def __init__(self, name: str, url: str, secret: bytes | None, roles: list[str], timeout_s: float) -> None:
        self.name = f"webhook:{name}"
        self.url, self.secret, self.roles, self.timeout_s = url, secret, set(roles), timeout_s

    def wants(self, notice: Notice) -> bool:
        return notice.kind == "escalate" and (not self.roles or notice.notify_role in self.roles)

    def deliver(self, notice: Notice) -> None:
        body = notice.payload()
        headers = {"Content-Type": "application/json", "User-Agent": "watchfloor"}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                if not 200 <= resp.status < 300:
                    raise ConnectionError(f"HTTP {resp.status}")
        except urllib.error.HTTPError as e:
            raise ConnectionError(f"HTTP {e.code}") from None
        except urllib.error.URLError as e:
            raise ConnectionError(f"unreachable: {e.reason}") from None

    def close(self) -> None:
        pass


class _SinkWorker(threading.Thread):
    """One thread per sink: a slow webhook never holds up MQTT. Retries with doubling backoff."""

    def __init__(self, sink: Sink, results: queue.Queue, max_attempts: int, retry_base_s: float,
                 queue_size: int) -> None:
        super().__init__(name=f"notify-{sink.name}", daemon=False)
        self.sink, self.results = sink, results
        self.max_attempts, self.retry_base_s = max_attempts, retry_base_s
        self.inbox: queue.Queue[Notice] = queue.Queue(maxsize=queue_size)
        self.retry: list[tuple[float, int, Notice, int]] = []  # (due, order, notice, attempt)
        self.stop_event = threading.Event()
        self._order = 0

    def _result(self, notice: Notice, attempt: int, ok: bool, error: str, final: bool) -> None:
        self.results.put({"notice": notice.id, "alarm": notice.alarm, "kind": notice.kind, "sink": self.sink.name,
                          "attempt": attempt, "ok": ok, "error": error, "final": final})

    def _try(self, notice: Notice, attempt: int) -> None:
        try:
            self.sink.deliver(notice)
        except Exception as e:  # noqa: BLE001 - any failure of a sink is a failed attempt, never a dead thread
            final = attempt >= self.max_attempts
            self._result(notice, attempt, False, f"{e.__class__.__name__}: {e}"[:300], final)
            if not final:
                self._order += 1
                due = time.monotonic() + self.retry_base_s * 2 ** (attempt - 1)
                heapq.heappush(self.retry, (due, self._order, notice, attempt + 1))
            return
        self._result(notice, attempt, True, "", True)

    def run(self) -> None:
        while not self.stop_event.is_set() or not self.inbox.empty():
            wait = 0.2
            if self.retry:
                wait = max(0.0, min(wait, self.retry[0][0] - time.monotonic()))
            try:
                self._try(self.inbox.get(timeout=wait), 1)
            except queue.Empty:
                pass
            while self.retry and self.retry[0][0] <= time.monotonic() and not self.stop_event.is_set():
                _, _, notice, attempt = heapq.heappop(self.retry)
                self._try(notice, attempt)
        for _, _, notice, attempt in self.retry:  # stopping: what is still waiting for a retry is reported
            self._result(notice, attempt - 1, False, "not delivered: notifier stopped", True)


class Notifier:
    """Fans notices out to the sinks that want them; ``results()`` drains the attempt results."""

    def __init__(self, sinks: list[Sink], *, max_attempts: int = 5, retry_base_s: float = 1.0,
                 queue_size: int = 10000) -> None:
        self.results_q: queue.Queue[dict[str, Any]] = queue.Queue()
        self.workers = [_SinkWorker(s, self.results_q, max_attempts, retry_base_s, queue_size) for s in sinks]
        for w in self.workers:
            w.start()

    def submit(self, notice: Notice) -> None:
        for w in self.workers:
            if not w.sink.wants(notice):
                continue
            try:
                w.inbox.put_nowait(notice)
            except queue.Full:  # counted and journaled as a dead letter, never silently lost
                w._result(notice, 0, False, "not delivered: sink queue full", True)

    def results(self, limit: int = 10000) -> list[dict[str, Any]]:
        out = []
        for _ in range(limit):
            try:
                out.append(self.results_q.get_nowait())
            except queue.Empty:
                break
        return out

    def stop(self, timeout_s: float = 5.0) -> None:
        for w in self.workers:
            w.stop_event.set()
        for w in self.workers:
            w.join(timeout_s)
            close = getattr(w.sink, "close", None)
            if close:
                close()


def sinks_from_site(site) -> list[Sink]:
    """The sinks a site's ``notifications`` section asks for."""
    sinks: list[Sink] = []
    n = site.notifications
    if n.mqtt:
        sinks.append(MqttSink(site.mqtt.host, site.mqtt.port, site.mqtt.topic_prefix,
                              username=site.mqtt.username, password=site.mqtt.password))
    for w in n.webhooks:
        secret = w.secret if w.secret is not None else (os.environ.get(w.secret_env) if w.secret_env else None)
        sinks.append(WebhookSink(w.id, w.url, secret.encode() if secret else None, list(w.roles), w.timeout_s))
    return sinks
