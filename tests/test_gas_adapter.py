"""The gas adapter against a real asyncua server: data-change values with their status as quality,
rejects for absurd values, and reconnection after the server restarts."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from console.cli.launch import write_site
from ingest import bus
from ingest.gas import GasAdapter
from tests.conftest import free_port

pytestmark = pytest.mark.slow


class GasServer:
    """A real asyncua server in its own process (tests/opcua_gas_server.py): kill() is a plant server crash."""

    def __init__(self, site_file, port: int, n: int = 3) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.opcua_gas_server", str(site_file), str(port),
                                      str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=Path(__file__).parent.parent)
        assert self.proc.stdout.readline().strip() == "ready"

    def write(self, det: str, value: float, status: str = "Good") -> None:
        self.proc.stdin.write(f"{det} {value} {status}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def collect(pull, want, timeout_s=15.0):
    """Gas batches and rejects from the adapter until want(values, rejects) or timeout."""
    values: list[tuple[int, float, int]] = []
    rejects: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not want(values, rejects) and time.monotonic() < deadline:
        if pull.poll(100):
            m = bus.decode(pull.recv_multipart())
            if m.kind == "gas_values":
                values += list(zip(m.arrays["detector_index"].tolist(), m.arrays["value"].tolist(),
                                   m.arrays["quality"].tolist()))
            elif m.kind == "rejected":
                rejects += [r["detail"] for r in m.meta["rejects"]]
    return values, rejects


def _three_detectors(demo_site, tmp_path, port):
    """The demo plant cut to its first three detectors, its OPC UA server on ``port`` at a 20 ms publishing
    interval, its ingest socket in ``tmp_path``; written to ``tmp_path/site.yaml``."""
    site = demo_site.model_copy(update={
        "opcua": demo_site.opcua.model_copy(update={"endpoint": f"opc.tcp://127.0.0.1:{port}/watchfloor/",
                                                    "publishing_interval_ms": 20}),
        "gas_detectors": demo_site.gas_detectors[:3],
        "bus": demo_site.bus.model_copy(update={"ingest": f"ipc://{tmp_path}/in.ipc"}),
    })
    site_file = tmp_path / "site.yaml"
    write_site(site, site_file)
    return site, site_file


def test_values_statuses_rejects_and_reconnect(demo_site, tmp_path):
    port = free_port()
    site, site_file = _three_detectors(demo_site, tmp_path, port)
    server = GasServer(site_file, port)
    ctx = zmq.Context()
    pull = bus.pull_socket(ctx, site.bus.ingest)
    stop = threading.Event()
    adapter = GasAdapter(site, stop)
    th = threading.Thread(target=adapter.run)
    th.start()
    try:
        # initial values of the 3 subscribed nodes arrive first (data change subscriptions send the current value)
        values, _ = collect(pull, lambda v, r: len(v) >= 3)
        assert sorted(i for i, _, _ in values[:3]) == [0, 1, 2]

        server.write("GD01", 12.5)
        server.write("GD02", 3.0, "UncertainLastUsableValue")
        server.write("GD03", 7.0, "BadSensorFailure")
        server.write("GD01", 1e6)  # absurd: beyond 1.5 x range_max
        values, rejects = collect(pull, lambda v, r: len(v) >= 3 and r)
        assert (0, 12.5, 0) in values and (1, 3.0, 1) in values
        bad = [v for v in values if v[0] == 2]
        assert bad and bad[-1][2] == 2 and np.isnan(bad[-1][1])  # bad is shown as bad, never as a number
        assert rejects == ["value outside the detector's range"]

        server.kill()  # the plant's OPC UA server crashes and comes back
        time.sleep(1.0)
        server = GasServer(site_file, port)
        server.write("GD01", 22.0)
        values, _ = collect(pull, lambda v, r: (0, 22.0, 0) in v, timeout_s=40)
        assert (0, 22.0, 0) in values, "no value after the server came back"
        assert th.is_alive()
    finally:
        stop.set()
        th.join(15)
        server.stop()
        pull.close(linger=0)
        ctx.term()


def make_cert(tmp_path, name: str, uri: str):
    import asyncio

    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key, cert = tmp_path / f"{name}-key.pem", tmp_path / f"{name}-cert.der"
    asyncio.run(setup_self_signed_certificate(key, cert, uri, "127.0.0.1",
                                              [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
                                              {"commonName": name}))
    return cert, key


def test_sign_and_encrypt_with_username_login(demo_site, tmp_path, monkeypatch):
    """Basic256Sha256 Sign&Encrypt and a username whose password comes from the environment; a server that
    only offers that endpoint. A wrong password gets no values and the adapter keeps retrying."""
    port = free_port()
    s_cert, s_key = make_cert(tmp_path, "server", "urn:freeopcua:python:server")
    c_cert, c_key = make_cert(tmp_path, "client", "urn:example.org:FreeOpcUa:opcua-asyncio")
    base = demo_site.model_copy(update={"gas_detectors": demo_site.gas_detectors[:2]})
    server_site = tmp_path / "server-site.yaml"
    write_site(base, server_site)
    proc = subprocess.Popen([sys.executable, "-m", "tests.opcua_gas_server", str(server_site), str(port), "2",
                             str(s_cert), str(s_key), "dcs", "s3cret"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).parent.parent)
    assert proc.stdout.readline().strip() == "ready"
    monkeypatch.setenv("WF_OPCUA_PASSWORD", "s3cret")
    site = base.model_copy(update={
        "opcua": base.opcua.model_copy(update={
            "endpoint": f"opc.tcp://127.0.0.1:{port}/watchfloor/", "publishing_interval_ms": 20,
            "security_policy": "Basic256Sha256", "security_mode": "SignAndEncrypt", "certificate": str(c_cert),
            "private_key": str(c_key), "username": "dcs", "password_env": "WF_OPCUA_PASSWORD"}),
        "bus": base.bus.model_copy(update={"ingest": f"ipc://{tmp_path}/in.ipc"}),
    })
    ctx = zmq.Context()
    pull = bus.pull_socket(ctx, site.bus.ingest)
    stop = threading.Event()
    th = threading.Thread(target=GasAdapter(site, stop).run)
    th.start()
    try:
        values, _ = collect(pull, lambda v, r: len(v) >= 2, timeout_s=30)
        assert sorted(i for i, _, _ in values[:2]) == [0, 1]
        proc.stdin.write("GD01 7.5 Good\n")
        proc.stdin.flush()
        values, _ = collect(pull, lambda v, r: (0, 7.5, 0) in v)
        assert (0, 7.5, 0) in values
    finally:
        stop.set()
        th.join(15)
        proc.stdin.close()
        proc.wait(10)
        pull.close(linger=0)
        ctx.term()

    # the same adapter with a wrong password: refused by the server, retried, no values, no crash
    monkeypatch.setenv("WF_OPCUA_PASSWORD", "wrong")
    proc = subprocess.Popen([sys.executable, "-m", "tests.opcua_gas_server", str(server_site), str(port), "2",
                             str(s_cert), str(s_key), "dcs", "s3cret"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).parent.parent)
    assert proc.stdout.readline().strip() == "ready"
    ctx = zmq.Context()
    pull = bus.pull_socket(ctx, site.bus.ingest)
    stop = threading.Event()
    th = threading.Thread(target=GasAdapter(site, stop).run)
    th.start()
    try:
        values, _ = collect(pull, lambda v, r: bool(v), timeout_s=4)
        assert values == [] and th.is_alive()
    finally:
        stop.set()
        th.join(20)
        assert not th.is_alive(), "the adapter did not stop"
        proc.stdin.close()
        proc.wait(10)
        pull.close(linger=0)
        ctx.term()


def test_a_gas_value_is_never_refused_for_its_time_and_no_notification_raises(demo_site, tmp_path):
    """A PLC clock an hour off must not blind gas monitoring: the value is applied at its receive time and
    counted as retimed (the batch's skew tells the engine). Whatever a notification holds, it is taken or
    counted with a reason, never raised into asyncua."""
    from datetime import UTC, datetime, timedelta

    from asyncua import ua

    site = demo_site.model_copy(update={"bus": demo_site.bus.model_copy(update={"ingest": f"ipc://{tmp_path}/i.ipc"})})
    adapter = GasAdapter(site, threading.Event())
    try:
        node = site.gas_detectors[0].node_id
        now = datetime.now(UTC).replace(tzinfo=None)
        t0 = time.time()
        for hours, value in ((-1, 5.0), (1, 6.0), (0, 7.0)):
            adapter.on_value(node, value, ua.DataValue(ua.Variant(value),
                                                       SourceTimestamp=now + timedelta(hours=hours)))
        for odd in (float("nan"), float("inf"), 10**400, "12", None, [1.0], b"\x00", True, {"v": 1}):
            adapter.on_value(node, odd, ua.DataValue(ua.Variant(0.0), SourceTimestamp=now))
        adapter.on_value("ns=2;s=NOPE", 1.0, ua.DataValue(ua.Variant(1.0), SourceTimestamp=now))
        adapter.on_value(node, 1.0, None)  # a broken notification: counted as an internal error, not raised
        ts = [row[3] for row in adapter.pending]
        assert [row[1] for row in adapter.pending] == [5.0, 6.0, 7.0]
        assert abs(ts[0] - t0) < 5 and abs(ts[1] - t0) < 5  # applied at ingest time, not 1 h off
        assert ts[2] == now.replace(tzinfo=UTC).timestamp()
        assert [round(row[4] / 3600) for row in adapter.pending] == [-1, 1, 0]  # the skew is kept for the batch
        assert adapter.retimed == 2
        assert dict(adapter.rejects.counts) == {"bad_number": 9, "unknown_id": 1, "internal_error": 1}
    finally:
        adapter.link.close()


def test_the_gas_adapter_process_does_not_log_each_notification(demo_site, tmp_path):
    """Measured before: every OPC UA notification and Publish logged at INFO (10 MB in 19 minutes). The adapter
    process, as the launcher runs it, logs its start and its problems, not its traffic."""
    from console.cli.supervisor import Supervisor

    port = free_port()
    site, site_file = _three_detectors(demo_site, tmp_path, port)
    server = GasServer(site_file, port)
    ctx = zmq.Context()
    pull = bus.pull_socket(ctx, site.bus.ingest)
    sup = Supervisor(tmp_path / "logs")
    try:
        sup.start_watchfloor("ingest-gas", ["ingest", "gas", "--site", str(site_file)], stage=1)
        values, _ = collect(pull, lambda v, r: len(v) >= 3, timeout_s=30)
        for i in range(60):
            server.write(f"GD0{1 + i % 3}", 1.0 + i)
        values, _ = collect(pull, lambda v, r: (2, 60.0, 0) in v, timeout_s=15)
        assert (2, 60.0, 0) in values
    finally:
        sup.stop_all()
        server.stop()
        pull.close(linger=0)
        ctx.term()
    lines = (tmp_path / "logs" / "ingest-gas.log").read_text().splitlines()
    assert any("subscribed to 3 gas detectors" in line for line in lines)
    assert len(lines) < 15, lines  # 60+ notifications and ~100 Publish responses went by
