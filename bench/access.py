"""``watchfloor bench access``: what proving who acts costs.

- the engine's check of a command's session token (HMAC-SHA256 over a short JSON payload, plus the binding and
  logout checks), per command, against the alternative of checking the password with every command (one argon2id
  verification at the users file's cost): the ratio is why a login gives a token;
- a login's password check (argon2id, 19 MiB, 2 passes), and how many the engine's one login thread can do;
- end to end through the real engine on ipc: an acknowledgement round trip with its token check, against a
  snapshot round trip (no check, no recording), from a raw DEALER.

Options: ``--commands N`` round trips each way (default 300).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import zmq

from bench import best_time, report

__all__ = ["run"]


def _round_trips(sock: zmq.Socket, requests: list[dict]) -> float:
    """Seconds per request, one at a time (send, wait for its reply)."""
    t0 = time.perf_counter()
    for req in requests:
        sock.send_json(req)
        while True:
            if not sock.poll(10_000):
                raise TimeoutError(f"no reply to {req['op']}")
            if sock.recv_json().get("id") == req["id"]:
                break
    return (time.perf_counter() - t0) / len(requests)


def run(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="watchfloor bench access")
    ap.add_argument("--commands", type=int, default=300)
    args = ap.parse_args(argv)

    from config import DEMO_SITE, load_site
    from config.users import hash_secret, verify_secret
    from ingest import bus
    from ingest.engine.access import Claims, Doorkeeper

    # -- the checks alone -------------------------------------------------------------------------------------
    door = Doorkeeper([], b"k" * 32)
    claims = Claims("op1", "operator", "bench", "c0ffee", "s1", 0.0, 4e9)
    token = door.token(claims)
    n = 20_000
    t_token = best_time(lambda: [door.verify(token, "c0ffee", 1.0) for _ in range(n)], 3) / n
    stored = hash_secret("Tanks-and-valves-2026")
    t_argon = best_time(lambda: verify_secret(stored, "Tanks-and-valves-2026"), 5)
    report("access.token_check", t_token * 1e6, "us/command")
    report("access.argon2id_check", t_argon * 1e3, "ms/login")
    report("access.password_per_command_vs_token", t_argon / t_token, "x (slower)")
    report("access.logins_per_s_one_thread", 1.0 / t_argon, "logins/s")

    # -- end to end through the real engine -------------------------------------------------------------------
    import threading

    from config.loader import dump_site
    from ingest.engine import EngineProcess

    base = load_site(DEMO_SITE)
    with tempfile.TemporaryDirectory() as d:
        eps = {name: f"ipc://{d}/{name}.ipc" for name in ("ingest", "publish", "command")}
        site = base.model_copy(update={"bus": base.bus.model_copy(update=eps)})
        ctx = zmq.Context()
        proc = EngineProcess(site, dump_site(site), Path(d) / "run", ctx=ctx, notify=False)
        stop = threading.Event()
        engine = threading.Thread(target=proc.run, args=(stop,), daemon=True)
        engine.start()
        proc.ready.wait(10)
        sock = bus.dealer_socket(ctx, site.bus.command, routing_id=b"bench-access")
        try:
            sock.send_json({"id": "login", "op": "login", "user": "op1", "password": "demo", "console": "bench",
                            "address": "127.0.0.1"})
            assert sock.poll(10_000), "no answer to the login"
            tok = sock.recv_json()["token"]
            snaps = [{"id": f"s{k}", "op": "snapshot"} for k in range(args.commands)]
            t_snap = _round_trips(sock, snaps)
            # refused by the alarm book (no such alarm), after the token check: recorded and journaled
            acks = [{"id": f"a{k}", "op": "ack", "alarm": f"bench.none.{k}", "user": "op1", "token": tok}
                    for k in range(args.commands)]
            t_ack = _round_trips(sock, acks)
        finally:
            sock.close(linger=0)
            stop.set()
            engine.join(20)
            proc.close()
            ctx.term()
    report("access.snapshot_round_trip", t_snap * 1e3, "ms (not checked, not recorded)")
    report("access.ack_round_trip", t_ack * 1e3, "ms (token checked, recorded, journaled)")
    report("access.token_share_of_ack", 100.0 * t_token / t_ack, "% of the round trip")
