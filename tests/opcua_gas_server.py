"""A small real asyncua server for the gas adapter tests, run as its own process so a test can kill it
(a plant server that crashes) and start it again on the same port.

Usage: python -m tests.opcua_gas_server SITE_YAML PORT N_DETECTORS [CERT KEY USER PASSWORD]
(with the last four: only Basic256Sha256 Sign&Encrypt, and only that user and password may log in)
Then write lines on stdin: ``<detector id> <value> <status name>`` (status: Good, UncertainLastUsableValue,
BadSensorFailure, ...). It prints ``ready`` when serving and ``ok`` after each write.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager

from config import load_site


class OneUser(UserManager):
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username == self.user and password == self.password:
            return User(role=UserRole.User)
        return None


async def main(site_path: str, port: int, n: int, secure: list[str]) -> None:
    site = load_site(site_path)
    server = Server(user_manager=OneUser(secure[2], secure[3]) if secure else None)
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/watchfloor/")
    if secure:
        await server.load_certificate(secure[0])
        await server.load_private_key(secure[1])
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        server.set_identity_tokens([ua.UserNameIdentityToken])
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
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:8]))
