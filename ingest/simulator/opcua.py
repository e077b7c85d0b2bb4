"""The gas detectors' OPC UA server (asyncua), in its own thread and asyncio loop.

Address space (namespace ``site.opcua.namespace_uri``, registered first so its index is 2)::

    Objects/GasDetectors            ns=2;s=GasDetectors          folder
      GD01                          ns=2;s=GD01                  object
        PV                          <GasDetector.node_id>        Double, the reading (e.g. ns=2;s=GD01.PV)
        Unit                        ns=2;s=GD01.Unit             String property: %LEL | ppm | %vol
        Gas                         ns=2;s=GD01.Gas              String property: CH4, H2S, O2, ...

The PV is written at ``rate_hz`` of simulation time with SourceTimestamp = the event time and the
status code of the reading (see gas.STATUS_NAMES); before the simulation clock starts it holds
Bad_WaitingForInitialData.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime

from asyncua import Server, ua

from config.schema import Site

from .clock import SimClock
from .gas import GasField

__all__ = ["GasOpcUaServer"]

log = logging.getLogger(__name__)

#: how long stopping waits for the server to close its client connections, seconds
_STOP_TIMEOUT_S = 3.0


class GasOpcUaServer:
    """Serves ``field`` readings on ``site.opcua.endpoint``; :meth:`start` returns once it accepts clients."""

    def __init__(self, site: Site, field: GasField, clock: SimClock, rate_hz: float = 1.0) -> None:
        self.site = site
        self.field = field
        self.clock = clock
        self.rate_hz = rate_hz
        self.updates = 0
        self.namespace_index = -1
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the server thread; raises if the server did not come up within ``timeout_s``."""
        self._thread = threading.Thread(target=self._main, name="sim-opcua", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise TimeoutError(f"OPC UA server on {self.site.opcua.endpoint} did not start in {timeout_s} s")
        if self._error is not None:
            self.stop()
            raise RuntimeError(
                f"OPC UA server on {self.site.opcua.endpoint} failed: {self._error}"
            ) from self._error

    def stop(self, timeout_s: float = 8.0) -> None:
        """Stop the server and join its thread (idempotent)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # loop already closed
                pass
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("OPC UA server thread did not stop within %s s", timeout_s)
            self._thread = None

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # reported to start(); the thread must not die silently
            self._error = e
            log.exception("OPC UA server stopped on an error")
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        cfg = self.site.opcua
        server = Server()
        await server.init()
        server.set_endpoint(cfg.endpoint)
        server.set_server_name(f"watchfloor simulator ({self.site.id})")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace(cfg.namespace_uri)
        self.namespace_index = idx
        if idx != 2:
            log.warning(
                "namespace %s got index %d, not 2: ns=2 node ids will not resolve", cfg.namespace_uri, idx
            )
        folder = await server.nodes.objects.add_folder(
            ua.NodeId("GasDetectors", idx), ua.QualifiedName("GasDetectors", idx)
        )
        pv_nodes = []
        for d in self.field.detectors:
            obj = await folder.add_object(ua.NodeId(d.id, idx), ua.QualifiedName(d.id, idx))
            pv = await obj.add_variable(
                ua.NodeId.from_string(d.node_id),
                ua.QualifiedName("PV", idx),
                0.0,
                varianttype=ua.VariantType.Double,
            )
            await obj.add_property(
                ua.NodeId(f"{d.id}.Unit", idx),
                ua.QualifiedName("Unit", idx),
                d.unit,
                varianttype=ua.VariantType.String,
            )
            await obj.add_property(
                ua.NodeId(f"{d.id}.Gas", idx),
                ua.QualifiedName("Gas", idx),
                d.gas,
                varianttype=ua.VariantType.String,
            )
            pv_nodes.append(pv.nodeid)
        waiting = ua.DataValue(
            Value=ua.Variant(0.0, ua.VariantType.Double),
            StatusCode=ua.StatusCode(ua.StatusCodes.BadWaitingForInitialData),
            ServerTimestamp=datetime.now(UTC),
        )
        for node in pv_nodes:  # until the clock starts: no reading yet, and OPC UA has a status for that
            await server.write_attribute_value(node, waiting)
        await server.start()
        try:
            log.info(
                "OPC UA server on %s (namespace %s = %d, %d detectors)",
                cfg.endpoint,
                cfg.namespace_uri,
                idx,
                len(pv_nodes),
            )
            self._ready.set()
            await self._update_loop(server, pv_nodes)
        finally:
            # a client still connected can keep the listening server's wait_closed() waiting for ever
            # (seen with the gas adapter attached): give up on it after a few seconds
            try:
                await asyncio.wait_for(server.stop(), timeout=_STOP_TIMEOUT_S)
            except TimeoutError:
                log.warning(
                    "OPC UA server: client connections not closed within %.0f s; leaving them",
                    _STOP_TIMEOUT_S,
                )

    async def _update_loop(self, server: Server, pv_nodes: list[ua.NodeId]) -> None:
        assert self._stop is not None
        k = 0
        period = 1.0 / self.rate_hz
        while not self._stop.is_set():
            if not self.clock.started.is_set():
                await self._sleep(0.05)
                continue
            t_due = k * period
            delay = self.clock.wall_delay_s(t_due)
            if delay > 0:
                await self._sleep(delay)
                continue
            now = self.clock.t_s()
            if now - t_due > 2 * period:  # fell behind (machine busy): skip to the present
                k = int(now / period)
                continue
            await self._write(server, pv_nodes, t_due)
            k += 1

    async def _sleep(self, seconds: float) -> None:
        assert self._stop is not None
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _write(self, server: Server, pv_nodes: list[ua.NodeId], t_s: float) -> None:
        r = self.field.read(t_s)
        src = datetime.fromtimestamp(self.clock.epoch(t_s), tz=UTC)
        now = datetime.now(UTC)
        for node, v, st in zip(pv_nodes, r.values, r.status):
            dv = ua.DataValue(
                Value=ua.Variant(float(v), ua.VariantType.Double),
                StatusCode=ua.StatusCode(int(st)),
                SourceTimestamp=src,
                ServerTimestamp=now,
            )
            await server.write_attribute_value(node, dv)
        self.updates += 1
