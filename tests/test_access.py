"""Who acts is proven, not claimed: the engine's logins, session tokens and throttle, tried as an outsider on the
same network would (raw pyzmq clients on the engine's own command socket, the workstation's login path from
another address), and the users file, `watchfloor users` and `config check` that keep the secrets.

The engine here is the real one (tests/engine_stack.py) with the demo users file (every password "demo", the
field workers' PIN 1234) and a 2 s idle limit, so that a token can be seen to expire."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from config import DEMO_SITE, ConfigError, load_site, parse_site
from config.loader import inline_secrets
from config.users import hash_secret, load_users_file, verify_secret, weak_secret
from console.auth import Credential, LoggedIn
from console.cli import main as cli
from console.link import EngineLink
from console.web.workstation import Workstation
from ingest import bus
from ingest.engine import RecordingReader
from tests.builders import wearable_events
from tests.engine_stack import DEMO_PIN, EngineStack, quick_rules

IDLE_S = 2.0
USERS_FILE = DEMO_SITE.parent / "demo-plant-users.yaml"


@pytest.fixture(scope="module")
def stack(demo_site, tmp_path_factory):
    access = demo_site.access.model_copy(update={"idle_logout_s": IDLE_S, "field_idle_logout_s": IDLE_S})
    with EngineStack(demo_site, tmp_path_factory.mktemp("access"), access=access, **quick_rules(demo_site)) as st:
        yield st


class Client:
    """A raw DEALER on the engine's command socket, as anyone on the network could open one."""

    def __init__(self, stack: EngineStack, name: bytes) -> None:
        self.sock = bus.dealer_socket(stack.ctx, stack.site.bus.command, routing_id=name)
        self.n = 0

    def ask(self, **req) -> dict:
        self.n += 1
        rid = f"r{self.n}"
        self.sock.send_json({"id": rid, **req})
        while True:
            assert self.sock.poll(5000), f"no reply to {req.get('op')}"
            reply = self.sock.recv_json()
            if reply.get("id") == rid:
                return reply

    def login(self, user: str, password: str = "demo") -> dict:
        return self.ask(op="login", user=user, password=password, console="raw", address="127.0.0.9")

    def close(self) -> None:
        self.sock.close(linger=0)


def _sos(stack: EngineStack, tag: str) -> str:
    stack.send(wearable_events([(tag, "sos")], time.time()))
    return stack.wait_alarm(f"person.sos:{tag}")["id"]


def test_forged_missing_expired_and_borrowed_tokens_are_refused_journaled_and_change_nothing(stack):
    alarm = _sos(stack, "T0061")
    before = stack.alarms()[alarm]["state"]
    a, b = Client(stack, b"raw-client-a"), Client(stack, b"raw-client-b")
    try:
        login = a.login("op1")
        assert login["ok"] and login["role"] == "operator" and login["idle_s"] == IDLE_S
        token = login["token"]
        tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        refusals = {
            "forged user": a.ask(op="ack", alarm=alarm, user="sup1", token=token),
            "missing token": a.ask(op="ack", alarm=alarm, user="op1"),
            "other console": b.ask(op="ack", alarm=alarm, user="op1", token=token),
            "tampered": a.ask(op="ack", alarm=alarm, user="op1", token=tampered),
        }
        time.sleep(IDLE_S + 0.5)  # no action for longer than the idle limit
        refusals["expired"] = a.ask(op="ack", alarm=alarm, user="op1", token=token)
        assert {k: (r["ok"], r["reason"]) for k, r in refusals.items()} == {
            "forged user": (False, "user 'sup1' is not the one logged in (op1)"),
            "missing token": (False, "no token: log in first"),
            "other console": (False, "token of another console"),
            "tampered": (False, "bad token (not signed by this engine)"),
            "expired": (False, "token expired: log in again"),
        }
        assert all("token" not in r for r in refusals.values())  # a refusal renews nothing
        assert before.endswith("_unack") and stack.alarms()[alarm]["acked"] is False  # not acknowledged
        rows = [(actor, d["reason"]) for a_id, actor, d in stack.journal("refused") if a_id == alarm]
        assert rows == [("sup1", "user 'sup1' is not the one logged in (op1)"), ("op1", "no token: log in first"),
                        ("op1", "token of another console"), ("op1", "bad token (not signed by this engine)"),
                        ("op1", "token expired: log in again")]
        # the same person, logged in again, acts: the journal names the verified user and role
        fresh = a.login("op1")["token"]
        done = a.ask(op="ack", alarm=alarm, user="op1", token=fresh, comment="radioed")
        assert done["ok"] and done["token"] != fresh  # each accepted command brings a fresh token
        assert [(actor, d["comment"]) for a_id, actor, d in stack.journal("acknowledge") if a_id == alarm] == [
            ("op1", "radioed")]
    finally:
        a.close()
        b.close()


def test_logout_ends_the_session_and_every_session_event_is_journaled(stack):
    c = Client(stack, b"raw-client-logout")
    try:
        login = c.login("sup2")
        assert c.ask(op="logout", user="sup2", token=login["token"]) == {"id": "r2", "ok": True}
        after = c.ask(op="ack", alarm="x", user="sup2", token=login["token"])
        assert after["reason"] == "session logged out: log in again"
        assert c.login("sup2", "not-it")["reason"] == "wrong user id or password"
        assert c.login("nobody")["reason"] == "wrong user id or password"  # unknown ids are not told apart
    finally:
        c.close()
    rows = [(e, actor, d.get("reason"), d.get("address")) for e, a_id, actor, d in stack.journal_rows()
            if a_id == "access" and actor in ("sup2", "nobody")]
    assert rows == [("login", "sup2", None, "127.0.0.9"), ("logout", "sup2", "user", None),
                    ("login_failed", "sup2", "wrong password", "127.0.0.9"),
                    ("login_failed", "nobody", "unknown user id", "127.0.0.9")]


def test_a_thousand_wrong_passwords_from_one_address_do_not_keep_the_supervisor_out(stack):
    with EngineLink(stack.site, poll_interval_s=0.001, console_name="ws-test") as link:
        attacker = Workstation(stack.site, link, address="127.0.0.2")
        supervisor = Workstation(stack.site, link, address="127.0.0.1")
        t0 = time.monotonic()
        results = [attacker.login("sup1", f"guess-{k}") for k in range(1000)]
        took_s = time.monotonic() - t0
        assert not any(results)
        assert "wait" in attacker.login_message.object  # the attacker's address is refused: "wait N s"
        assert supervisor.login("sup1", "demo") and supervisor.user.id == "sup1"  # from elsewhere: at once
        assert not attacker.login("sup1", "demo")  # even the right password waits, from the attacker's address
        assert "wait" in attacker.login_message.object
    checked = [d for e, a_id, actor, d in stack.journal_rows() if e == "login_failed" and d.get("address") ==
               "127.0.0.2"]
    wrong = [d for d in checked if d["reason"] == "wrong password"]
    # the first five were checked (argon2id), then the address waits (1 s, doubling) and only a few more were
    # looked at; the waiting tries are journaled as one note, not a thousand rows
    assert 5 <= len(wrong) <= 5 + max(1, int(took_s).bit_length() + 1), (len(wrong), took_s)
    assert len(checked) <= len(wrong) + 3


def test_a_field_worker_signs_in_with_a_pin_and_may_take_no_alarm_action(stack):
    alarm = _sos(stack, "T0062")
    c = Client(stack, b"raw-client-field")
    try:
        by_password = c.login("P0186")
        assert by_password["reason"] == "wrong user id or password"
        pin = c.ask(op="login", user="P0186", pin=DEMO_PIN, console="phone", address="10.1.2.3")
        assert pin["ok"] and pin["role"] == "field_worker" and pin["idle_s"] == IDLE_S
        refused = c.ask(op="ack", alarm=alarm, user="P0186", token=pin["token"])
        assert refused["ok"] is False and refused["reason"] == "role field_worker may not acknowledge"
    finally:
        c.close()
    with EngineLink(stack.site, poll_interval_s=0.001) as link:
        ws = Workstation(stack.site, link, address="127.0.0.1")
        assert not ws.login("P0101", DEMO_PIN) and ws.user is None  # the workstation takes no field account
    login = [d for e, a_id, actor, d in stack.journal_rows() if e == "login" and actor == "P0186"]
    assert [d["method"] for d in login] == ["pin"]


def test_an_idle_workstation_login_ends_but_the_alarms_stay_in_view(stack):
    alarm = _sos(stack, "T0063")
    with EngineLink(stack.site, poll_interval_s=0.005) as link:
        ws = Workstation(stack.site, link, address="127.0.0.1")
        assert ws.login("op2", "demo")
        snap = link.wait_until(lambda s: alarm in s.alarms.alarms)
        ws.update(snap)
        assert ws.user is not None and ws.body.objects == [ws.main_view]
        deadline = time.monotonic() + IDLE_S + 0.2
        while time.monotonic() < deadline:  # the page's tick, with nobody acting
            ws.update(link.snapshot())
            time.sleep(0.1)
        assert ws.user is None and ws.body.objects == [ws.login_view.form]
        assert "without an action" in ws.login_message.object
        assert ws.status_bar.root.visible  # the status bar (and the escalation banner) stay: the view is kept
        link.wait_until(lambda s: True)
    stack.wait_for(lambda: [1 for e, a_id, actor, d in stack.journal_rows()
                            if e == "logout" and actor == "op2" and d.get("reason") == "idle"],
                   what="the idle logout journaled")


def test_a_credential_renews_with_each_reply_and_ends_on_the_engines_word():
    now = [100.0]
    cred = Credential(LoggedIn("op1", "Operator 1", "operator"), "t1", "s", 900.0, clock=lambda: now[0])
    assert cred.sign({"op": "ack", "alarm": "a"}) == {"op": "ack", "alarm": "a", "user": "op1", "token": "t1"}
    cred.take({"ok": True, "token": "t2"})
    assert cred.token == "t2" and not cred.ended
    cred.take({"ok": False, "reason": "role operator may not shelve"})  # refused, still logged in
    assert not cred.ended
    now[0] += 896.0
    assert cred.idle()  # five seconds before the engine's limit: no action gets refused for lateness
    cred.take({"ok": False, "reason": "token expired: log in again"})
    assert cred.ended == "token expired: log in again"


# -- the users file, `watchfloor users` and `config check` ------------------------------------------------------
def test_the_demo_users_file_holds_argon2id_hashes_each_with_its_own_salt():
    accounts = load_users_file(USERS_FILE)
    hashes = [a.password_hash or a.pin_hash for a in accounts]
    assert all(h.startswith("$argon2id$v=19$m=19456,t=2,p=1$") for h in hashes)
    salts = [h.split("$")[4] for h in hashes]
    assert len(set(salts)) == len(salts)  # no two alike, though every password is "demo"
    staff = [a for a in accounts if a.role != "field_worker"]
    assert all(verify_secret(a.password_hash, "demo") for a in staff)
    assert not verify_secret(staff[0].password_hash, "Demo") and not verify_secret(None, "demo")
    assert {a.id for a in accounts} >= {"op1", "op2", "sup1", "sup2", "safety1", "P0186"}
    assert hash_secret("x") != hash_secret("x")


def test_weak_secrets_are_named():
    assert weak_secret("demo") and weak_secret("sup1", user_id="sup1") and weak_secret("short1")
    assert weak_secret("1234", pin=True) and weak_secret("111111", pin=True) and weak_secret("123456", pin=True)
    assert weak_secret("correct horse battery") is None and weak_secret("480715", pin=True) is None


def _real_site(tmp_path: Path) -> Path:
    """The demo site as if it were a real one (not a demo), with a copy of the demo users file."""
    data = yaml.safe_load(DEMO_SITE.read_text())
    data["access"] = {"users_file": "users.yaml"}
    data["floor_plan"].pop("image", None)
    shutil.copy(USERS_FILE, tmp_path / "users.yaml")
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return tmp_path / "site.yaml"


def test_config_check_refuses_the_demo_password_on_a_site_that_is_not_a_demo(tmp_path, capsys, monkeypatch):
    site = _real_site(tmp_path)
    assert cli(["config", "check", str(site)]) == 1
    err = capsys.readouterr().err
    assert "(op1)" in err and "a default or guessable password" in err and "watchfloor users passwd op1" in err
    # a weak new password is refused too; a strong one (from a file, for automation) is taken
    (tmp_path / "weak").write_text("password\n")
    assert cli(["users", "passwd", "op1", "--site", str(site), "--password-file", str(tmp_path / "weak")]) != 0
    monkeypatch.setenv("OP1_NEW", "Tanks-and-valves-2026")
    assert cli(["users", "passwd", "op1", "--site", str(site), "--password-env", "OP1_NEW"]) == 0
    assert verify_secret(next(a for a in load_users_file(tmp_path / "users.yaml") if a.id == "op1").password_hash,
                         "Tanks-and-valves-2026")
    assert (tmp_path / "users.yaml").stat().st_mode & 0o777 == 0o600
    capsys.readouterr()
    assert cli(["config", "check", str(site)]) == 1  # the others still have the demo password
    assert "(op1)" not in capsys.readouterr().err


def test_users_add_disable_and_list_never_show_a_hash(tmp_path, capsys, monkeypatch):
    site = _real_site(tmp_path)
    monkeypatch.setenv("PW", "Flare-stack-north-7")
    assert cli(["users", "add", "op9", "--name", "Night operator", "--role", "operator", "--team", "C",
                "--site", str(site), "--password-env", "PW"]) == 0
    assert cli(["users", "add", "op9", "--name", "x", "--role", "operator", "--site", str(site),
                "--password-env", "PW"]) == 1  # exists
    assert cli(["users", "disable", "op9", "--site", str(site)]) == 0
    capsys.readouterr()
    assert cli(["users", "list", "--site", str(site)]) == 0
    out = capsys.readouterr().out
    assert "op9" in out and "DISABLED" in out and "$argon2id$" not in out
    assert load_site(site).users[-1].model_dump(exclude_defaults=True) == {
        "id": "op9", "name": "Night operator", "role": "operator", "team": "C", "enabled": False}


def test_secrets_are_never_in_the_site_file_and_old_sha256_entries_say_how_to_reset():
    data = yaml.safe_load(DEMO_SITE.read_text())
    data.pop("access")
    data["users"] = [{"id": "op1", "name": "Operator 1", "role": "operator", "password_sha256": "ab" * 32}]
    with pytest.raises(ConfigError) as e:
        parse_site(data)
    assert "users[0]" in str(e.value) and "watchfloor users passwd op1" in str(e.value)
    data["users"] = [{"id": "op1", "name": "Operator 1", "role": "operator", "password_hash": "$argon2id$x"}]
    with pytest.raises(ConfigError, match="secrets never go in the site file"):
        parse_site(data)


def test_the_shipped_configs_hold_no_secret_and_config_check_warns_about_an_inline_one(tmp_path, capsys):
    for f in (DEMO_SITE.parent).glob("*.yaml"):
        if f != USERS_FILE:
            assert inline_secrets(f) == [], f
    data = yaml.safe_load(DEMO_SITE.read_text())
    data["mqtt"]["password"] = "broker-secret"
    data["access"]["users_file"] = str(USERS_FILE)
    data["floor_plan"].pop("image", None)
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    assert cli(["config", "check", str(tmp_path / "site.yaml")]) == 0  # a warning, not a refusal
    err = capsys.readouterr().err
    assert "warning:" in err and "mqtt.password: a secret written in the site file" in err


def test_a_recording_keeps_the_roster_and_no_secret(stack):
    import sqlite3

    con = sqlite3.connect(f"file:{stack.out_dir / 'recording.sqlite'}?mode=ro", uri=True)
    (text,) = con.execute("SELECT value FROM meta WHERE key = 'site_yaml'").fetchone()
    con.close()
    assert "$argon2id$" not in text and "users_file" not in text
    roster = {u["id"]: u["role"] for u in yaml.safe_load(text)["users"]}
    assert roster["sup2"] == "supervisor" and roster["P0186"] == "field_worker"
    assert json.dumps(roster)  # plain data


def test_a_command_from_an_unknown_peer_on_the_ingest_socket_is_refused_by_kind(stack):
    """The ingest socket takes each kind only from its adapter: a permit command that says it comes from the UWB
    adapter is refused (counted and kept as a rejected input), never recorded as a command."""
    push = bus.push_socket(stack.ctx, stack.site.bus.ingest)
    try:
        sender = bus.Sender(push, "uwb")
        sender.send("permits.command", "permit_command", time.time(), None,
                    {"id": "p", "op": "permit_suspend", "user": "sup1", "permit": "HW-1"}, timeout_s=5)
    finally:
        push.close(linger=1000)

    def kept() -> list:
        rec = RecordingReader(stack.out_dir / "recording.sqlite")
        try:
            return [d for d in rec.dead_letters() if d[2] == "not_allowed" and "permit_command" in d[5]]
        finally:
            rec.close()

    (dead,) = stack.wait_for(kept, what="the refused permit command kept as a dead letter")
    assert dead[1] == "engine" and "comes only from the permits adapter, not from 'uwb'" in dead[5]
    assert not [1 for e, a_id, actor, d in stack.journal_rows() if a_id == "permit:HW-1"]


def test_the_throttle_doubles_the_wait_per_source_and_never_locks_an_id_everywhere():
    from ingest.engine.access import LoginThrottle

    t = LoginThrottle(free_failures=5, max_wait_s=300.0)
    waits = [t.failed("sup1", "10.0.0.66", 100.0, "conn-a") for _ in range(12)]
    assert waits == [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128]  # the 5th failure: wait 1 s, then doubling
    assert t.failed("sup1", "10.0.0.66", 100.0, "conn-a") == 256 and t.failed("x", "10.0.0.66", 100.0) == 300
    assert t.wait_s("sup1", "10.0.0.66", 100.0) == 300.0  # at most max_wait_s
    assert t.wait_s("sup1", "10.0.0.1", 100.0) == 0.0  # the same id from another address: at once
    assert t.wait_s("op1", "10.0.0.66", 100.0) == 300.0  # the address waits, whoever it claims to be
    assert t.wait_s("sup1", "10.0.0.66", 400.1) == 0.0  # the wait runs out
    # a raw client making up an address per try still has one connection: it waits after 10 x 5 failures
    for k in range(49):
        t.failed("sup1", f"192.0.2.{k}", 500.0, "conn-b")
    assert t.wait_s("sup1", "192.0.2.200", 500.0, "conn-b") == 0.0
    assert t.failed("sup1", "192.0.2.250", 500.0, "conn-b") == 1.0
    assert t.wait_s("sup1", "192.0.2.251", 500.0, "conn-b") == 1.0
    t.succeeded("sup1", "10.0.0.1")  # a success forgets that person's own count at that address only


def test_a_fault_in_the_login_check_or_the_gate_refuses_that_request_and_the_engine_goes_on(stack, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("argon2 library gone")

    c = Client(stack, b"raw-client-fault")
    try:
        monkeypatch.setattr(stack.proc.gate.door, "check_login", broken)
        assert c.login("op2")["reason"] == "wrong user id or password"
        monkeypatch.setattr(stack.proc.gate, "command", broken)
        assert c.ask(op="ack", alarm="x", user="op2", token="t")["reason"] == "internal error: RuntimeError"
        monkeypatch.undo()
        assert c.login("op2")["ok"] and stack.thread.is_alive()
    finally:
        c.close()
    failed = [d["reason"] for e, a_id, actor, d in stack.journal_rows() if e == "login_failed" and actor == "op2"]
    assert failed[-1] == "check failed: RuntimeError"
