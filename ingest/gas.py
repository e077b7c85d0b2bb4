"""The gas adapter: an OPC UA client subscribed (data change, not polling) to every configured detector.

Each notification becomes (detector index, value, quality, source time); a batch goes to the engine every
``SLICE_S``. Quality follows the OPC UA status code: Good -> 0, Uncertain -> 1, Bad -> 2 (DESIGN principle 4:
a bad value is shown as bad, never as the last good value). asyncua's supervisor reconnects with backoff after
the server restarts and re-creates the subscription; the first connection is retried here with backoff too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from datetime import UTC

import numpy as np
from asyncua import Client, ua

from config import Site

from .adapter import EngineSender, adapter_main
from .protocol.names import QUALITY_BAD, QUALITY_GOOD, QUALITY_NO_DATA, QUALITY_UNCERTAIN
from .rejects import RejectBin

log = logging.getLogger(__name__)

__all__ = ["GasAdapter", "quality_of", "SLICE_S", "main"]

SLICE_S = 0.5


def quality_of(status: ua.StatusCode | None) -> int:
    """OPC UA status code -> 0 good, 1 uncertain, 2 bad, 3 no data yet (Bad_WaitingForInitialData: a server
    that has just started has no reading; that is silence, judged by the stale rule, not a sensor fault)."""
    if status is None or status.is_good():
        return QUALITY_GOOD
    if status.is_uncertain():
        return QUALITY_UNCERTAIN
    if status.value == ua.StatusCodes.BadWaitingForInitialData:
        return QUALITY_NO_DATA
    return QUALITY_BAD


class _Handler:
    """asyncua subscription handler: named callbacks, queueing only."""

    def __init__(self, adapter: GasAdapter) -> None:
        self.adapter = adapter

    def datachange_notification(self, node, val, data) -> None:
        self.adapter.on_value(node.nodeid.to_string(), val, data.monitored_item.Value)

    def status_change_notification(self, status) -> None:
        log.warning("OPC UA subscription status change: %s", status)


class GasAdapter:
    def __init__(self, site: Site, stop: threading.Event) -> None:
        self.site = site
        self.stop = stop
        self.index = {d.node_id: i for i, d in enumerate(site.gas_detectors)}
        self.range_max = np.array([d.range_max for d in site.gas_detectors])
        self.link = EngineSender(site, "gas", stop)
        self.rejects = RejectBin()
        self.pending: list[tuple[int, float, int, float, float]] = []
        self.notifications = 0
        self.failures = 0
        self.retimed = 0  # values of this slice applied at ingest time: their source time was outside the window
        self.clock = site.clock.gas

    def on_value(self, node_id: str, val, dv: ua.DataValue) -> None:
        """One notification (asyncua's thread). Whatever it holds, it is taken or counted: never raised."""
        try:
            self._take(node_id, val, dv, time.time())
        except Exception as e:  # noqa: BLE001 - no notification may stop gas monitoring
            self.failures += 1
            if self.failures == 1:
                log.exception("gas adapter failed on a notification of %s; dead-lettered, going on", node_id)
            self.rejects.add("internal_error", str(node_id), val, f"{e.__class__.__name__}: {str(e)[:120]}")

    def _take(self, node_id: str, val, dv: ua.DataValue, received_ts_s: float) -> None:
        self.notifications += 1
        i = self.index.get(node_id)
        if i is None:
            self.rejects.add("unknown_id", node_id, val, "unknown node id")
            return
        q = quality_of(dv.StatusCode)
        ts = dv.SourceTimestamp or dv.ServerTimestamp
        ts_s = ts.replace(tzinfo=UTC).timestamp() if ts is not None else received_ts_s
        if q == QUALITY_NO_DATA:
            return  # no reading yet: nothing to pass on
        if q != QUALITY_BAD:
            try:
                if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(float(val)):
                    raise OverflowError
            except OverflowError:  # also an integer too large for a float
                self.rejects.add("bad_number", node_id, val, "value is not a finite number")
                return
            if val < -0.05 * self.range_max[i] or val > 1.5 * self.range_max[i]:
                self.rejects.add("out_of_range", node_id, val, "value outside the detector's range")
                return
        # a gas value is never refused for its time: outside the window it is applied at ingest time and the
        # source is flagged (a PLC with a wrong clock must not blind gas monitoring)
        skew = ts_s - received_ts_s
        if not (-self.clock.past_s <= skew <= self.clock.future_s):
            self.retimed += 1
            ts_s = received_ts_s
        self.pending.append((i, float(val) if q != QUALITY_BAD and val is not None else math.nan, q, ts_s, skew))

    def flush(self) -> None:
        if self.pending:
            rows, self.pending = self.pending, []
            idx, val, q, ts, skew = zip(*rows)
            retimed, self.retimed = self.retimed, 0
            self.link.send("gas.values", "gas_values", max(ts), {
                "detector_index": np.array(idx, np.int32), "value": np.array(val, np.float64),
                "quality": np.array(q, np.uint8), "ts_s": np.array(ts, np.float64)},
                {"skew_s": float(np.max(skew)), "retimed": retimed})
        self.link.send_rejects("gas", self.rejects)

    async def _session(self) -> None:
        client = Client(self.site.opcua.endpoint, timeout=4, watchdog_intervall=1.0, auto_reconnect=True,
                        reconnect_max_delay=10.0)
        await self._secure(client)
        await client.connect()
        try:
            sub = await client.create_subscription(self.site.opcua.publishing_interval_ms, _Handler(self))
            await sub.create_monitored_items(self._monitored_items())
            log.info("subscribed to %d gas detectors at %s", len(self.site.gas_detectors), self.site.opcua.endpoint)
            while not self.stop.is_set():
                await asyncio.sleep(SLICE_S)
                self.flush()
        finally:
            self.flush()
            try:
                await asyncio.wait_for(client.disconnect(), 3)
            except Exception:  # noqa: BLE001 - the server may already be gone at shutdown
                pass

    def _monitored_items(self) -> list[ua.MonitoredItemCreateRequest]:
        """One monitored item per detector with the trigger StatusValueTimestamp: a reading that does not
        change (0.0 ppm, 20.9 %vol) is still reported each time the server stamps it, so a live detector is
        never mistaken for a silent one."""
        items = []
        for i, d in enumerate(self.site.gas_detectors):
            rv = ua.ReadValueId(NodeId=ua.NodeId.from_string(d.node_id), AttributeId=ua.AttributeIds.Value)
            params = ua.MonitoringParameters(
                ClientHandle=10_000 + i, SamplingInterval=0.0, QueueSize=10, DiscardOldest=True,
                Filter=ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp))
            items.append(ua.MonitoredItemCreateRequest(ItemToMonitor=rv, MonitoringMode=ua.MonitoringMode.Reporting,
                                                       RequestedParameters=params))
        return items

    async def _secure(self, client: Client) -> None:
        """Security policy and login from the site's ``opcua`` section."""
        o = self.site.opcua
        if o.security_policy == "Basic256Sha256":
            from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

            mode = getattr(ua.MessageSecurityMode, o.security_mode)
            await client.set_security(SecurityPolicyBasic256Sha256, o.certificate, o.private_key,
                                      server_certificate=o.server_certificate, mode=mode)
        if o.username:
            password = os.environ.get(o.password_env or "")
            if password is None:
                raise ua.UaError(f"environment variable {o.password_env} (OPC UA password) is not set")
            client.set_user(o.username)
            client.set_password(password)

    async def _run(self) -> None:
        delay = 0.5
        while not self.stop.is_set():
            try:
                await self._session()
            except (TimeoutError, OSError, ua.UaError) as e:
                log.warning("OPC UA %s unavailable (%s); retrying in %.1f s", self.site.opcua.endpoint, e, delay)
            except Exception:  # noqa: BLE001 - the adapter must outlive any one session's failure
                log.exception("gas session failed; retrying in %.1f s", delay)
            if self.stop.is_set():
                break
            self.flush()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        finally:
            self.link.close()


def main(argv: list[str] | None = None) -> int:
    """``watchfloor ingest gas --site FILE``."""
    return adapter_main("gas", argv, lambda site, stop: GasAdapter(site, stop).run())
