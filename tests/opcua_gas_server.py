"""A small real asyncua server for the gas adapter tests, run as its own process so a test can kill it
(a plant server that crashes) and start it again on the same port.

Usage: python -m tests.opcua_gas_server SITE_YAML PORT N_DETECTORS
Then write lines on stdin: ``<detector id> <value> <status name>`` (status: Good, UncertainLastUsableValue,
BadSensorFailure, ...). It prints ``ready`` when serving and ``ok`` after each write.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

from asyncua import Server, ua

from config import load_site


async def main(site_path: str, port: int, n: int) -> None:
    site = load_site(site_path)
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/watchfloor/")
    await server.register_namespace(site.opcua.namespace_uri)
    obj = await server.nodes.objects.add_object(2, "Gas")
    nodes = {}
    for d in site.gas_detectors[:n]:
        nodes[d.id] = await obj.add_variable(ua.NodeId.from_string(d.node_id), d.id, 0.0)
    async with server:
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            det, value, status = line.split()
            dv = ua.DataValue(ua.Variant(float(value), ua.VariantType.Double),
                              StatusCode=ua.StatusCode(getattr(ua.StatusCodes, status)),
                              SourceTimestamp=datetime.now(UTC))
            await nodes[det].write_value(dv)
            print("ok", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
