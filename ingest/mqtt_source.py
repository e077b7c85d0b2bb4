"""The MQTT edge of an adapter: subscribe, queue raw payloads (bounded), hand them to the adapter's loop.

paho-mqtt's network thread only enqueues; parsing, validation and solving happen on the adapter's own thread,
a time slice at a time. A full queue blocks the paho thread (back-pressure to the broker) rather than dropping.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from config import Site

log = logging.getLogger(__name__)

__all__ = ["MqttSource", "RawMessage"]


@dataclass(frozen=True)
class RawMessage:
    topic: str
    payload: bytes
    received_ts_s: float


class MqttSource:
    """Subscribes to ``topics`` (relative to the site's topic prefix) and queues what arrives."""

    def __init__(self, site: Site, topics: list[str], client_id: str, *, maxsize: int = 200_000) -> None:
        self.site = site
        self.prefix = site.mqtt.topic_prefix.rstrip("/")
        self.topics = [f"{self.prefix}/{t}" for t in topics]
        self.queue: queue.Queue[RawMessage] = queue.Queue(maxsize=maxsize)
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if site.mqtt.username:
            self.client.username_pw_set(site.mqtt.username, site.mqtt.login_password())
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.received = 0

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT connect refused: %s", reason_code)
            return
        for t in self.topics:
            client.subscribe(t, qos=1)
        self.connected.set()
        log.info("MQTT connected to %s:%s, subscribed %s", self.site.mqtt.host, self.site.mqtt.port, self.topics)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        log.warning("MQTT disconnected (%s); paho reconnects with backoff", reason_code)

    def _on_message(self, client, userdata, message) -> None:
        self.received += 1
        self.queue.put(RawMessage(message.topic, message.payload, time.time()))

    def start(self) -> None:
        self.client.connect_async(self.site.mqtt.host, self.site.mqtt.port, keepalive=30)
        self.client.loop_start()

    def wait_connected(self, timeout_s: float = 10.0) -> bool:
        return self.connected.wait(timeout_s)

    def drain(self, limit: int = 100_000) -> list[RawMessage]:
        out = []
        for _ in range(limit):
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return out

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
