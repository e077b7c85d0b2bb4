"""A record that cannot be rewritten unnoticed: a real engine run signs its journal and its recording, and every
way of rewriting them with plain sqlite3 (a changed byte, a deleted row, a cut tail with the head rewritten, a
chain recomputed from some row on, an emptied journal, rows added after the close, the close seal removed,
seals re-signed with another key, a journal that is not what its recording replays to, a changed input or dead
letter) is found by `watchfloor journal verify`, with its reason. An untouched run is proven."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
import threading
import time

import pytest
import yaml
import zmq

from alarms.journal import verify_journal
from alarms.keys import KeyDirError, fingerprint, init_key_dir, read_journal_fingerprint
from alarms.seal import Signer, read_seals
from config import DEMO_SITE
from config.schema import SigningSettings
from console.cli import main as cli
from console.cli.launch import write_site
from ingest.engine import EngineProcess, site_from_text
from ingest.engine.recording import RecordingReader, input_hash, verify_recording
from tests.builders import positions
from tests.engine_stack import EngineStack, ipc_site, reply_without_token

AID = "zone.restricted:Z-SUB:T0050"


def _signing(keys, fp, interval_s=0.2) -> dict:
    return {"signing": SigningSettings(key_dir=str(keys), fingerprint=fp, seal_interval_s=interval_s)}


def _site(demo_site, folder, keys, fp, interval_s=0.2):
    return ipc_site(demo_site, folder, **_signing(keys, fp, interval_s))


@pytest.fixture(scope="module")
def signed_run(demo_site, tmp_path_factory):
    """One short live run of the engine with a signing key: an alarm raised, acknowledged by sup1 and cleared,
    refusals by op2, a frame that is not a bus message (a dead letter), seals every 0.2 s and a close seal."""
    base = tmp_path_factory.mktemp("signed")
    keys = base / "keys"
    fp = init_key_dir(keys)
    with EngineStack(demo_site, base, out="run", site_text=DEMO_SITE.read_text(), **_signing(keys, fp)) as stack:
        site = stack.site
        t0 = time.time()
        for k in range(12):  # into Z-SUB (x 133..157) and stay past the 2 s dwell: the alarm activates
            stack.send(positions(site, {"T0050": (135.0 + k, 70.0)}, t0 + 0.25 * k))
            time.sleep(0.03)
        stack.push.send_multipart([b"garbage"])  # a dead letter
        stack.wait_for(lambda: stack.command(op="snapshot")["alarms"], what="the alarm on T0050", timeout_s=5)
        assert reply_without_token(stack.command(id="a1", op="ack", alarm=AID, user="sup1")) == {"id": "a1", "ok": True}
        for i in range(5):  # refused: journaled with the claimed user as actor
            assert stack.command(id=f"r{i}", op="ack", alarm=f"no.such.{i}", user="op2")["ok"] is False
            time.sleep(0.1)
        for k in range(3):  # out again (the alarm clears after the fences' dwell, if the run lasts)
            stack.send(positions(site, {"T0050": (170.0 + k, 70.0)}, time.time()))
        time.sleep(0.5)
    site_file = base / "site.yaml"
    write_site(site, site_file)
    return {"out": base / "run", "fp": fp, "keys": keys, "site": site, "site_file": site_file}


@pytest.fixture
def run(signed_run, tmp_path):
    """A copy of the signed run to tamper with."""
    out = tmp_path / "run"
    shutil.copytree(signed_run["out"], out)
    return {**signed_run, "journal": out / "journal.sqlite", "recording": out / "recording.sqlite", "out": out}


def sql(path, *statements):
    db = sqlite3.connect(path)
    for s in statements:
        db.execute(*s) if isinstance(s, tuple) else db.execute(s)
    db.commit()
    db.close()


def journal_hash(prev, row):
    """The journal row hash as docs/protocol.md states it."""
    r, seq, ts, event, alarm, state, actor, role, detail = row
    body = json.dumps([r, seq, repr(float(ts)), event, alarm, state, actor, role, detail], ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256((prev + body).encode("utf-8")).hexdigest()


def rehash_journal_from(path, first_row):
    """What a forger without the key does after changing a row: recompute every hash from there, and the head."""
    db = sqlite3.connect(path)
    rows = db.execute("SELECT row, input_seq, engine_ts_s, event, alarm_id, state, actor, role, detail, prev_hash "
                      "FROM journal ORDER BY row").fetchall()
    prev = rows[first_row - 1][9]  # the unchanged link to the row before
    for r in rows[first_row - 1:]:
        h = journal_hash(prev, r[:9])
        db.execute("UPDATE journal SET prev_hash = ?, hash = ? WHERE row = ?", (prev, h, r[0]))
        prev = h
    db.execute("UPDATE chain_head SET rows = ?, hash = ?", (len(rows), prev))
    db.commit()
    db.close()


def verify(r, *extra):
    """`watchfloor journal verify` of the run's journal against the pinned key (as --site gives it: see the
    untouched-run test)."""
    return cli(["journal", "verify", str(r["journal"]), "--fingerprint", r["fp"], *extra])


# -- the untouched run -------------------------------------------------------------------------------------------
def test_the_run_has_rows_dead_letters_and_seals_of_both_kinds(signed_run):
    out = signed_run["out"]
    j = verify_journal(out / "journal.sqlite", fingerprint=signed_run["fp"])
    r = verify_recording(out / "recording.sqlite", fingerprint=signed_run["fp"])
    assert j.proven and j.closed and j.rows >= 7, j  # activate, acknowledge, 5 refusals
    assert r.proven and r.closed and r.rows > 20, r
    assert j.seals >= 2 and r.seals >= 3  # periodic seals by engine time, then the close seal
    db = sqlite3.connect(out / "journal.sqlite")
    actors = [a for (a,) in db.execute("SELECT actor FROM journal WHERE event = 'acknowledge'")]
    seals = read_seals(db)
    db.close()
    assert actors == ["sup1"] and seals[-1].close and all(s.kind == "journal" for s in seals)
    rec = RecordingReader(out / "recording.sqlite")
    assert len(rec.dead_letters()) == 1
    rec.close()


def test_untouched_journal_and_recording_verify_as_signed_and_match_the_replay(run, capsys):
    code = cli(["journal", "verify", str(run["journal"]), "--recording", str(run["recording"]),
                "--site", str(run["site_file"])])
    out = capsys.readouterr()
    assert code == 0, out
    assert out.out.count("intact and signed") == 2 and run["fp"] in out.out and "closed" in out.out
    assert "matches the replay" in out.out
    assert cli(["journal", "verify", str(run["recording"]), "--fingerprint", run["fp"]]) == 0  # told apart by tables


def test_without_a_pinned_key_the_result_is_unsigned_not_intact(run, capsys):
    assert cli(["journal", "verify", str(run["journal"])]) == 1
    out = capsys.readouterr().out
    assert "unsigned: chain intact but not proven" in out and "seals not checked" in out


def test_the_recording_keeps_no_secrets_and_still_parses(run):
    rec = RecordingReader(run["recording"])
    text = rec.meta["site_yaml"]
    rec.close()
    users_file = (DEMO_SITE.parent / "demo-plant-users.yaml").read_text()
    assert "$argon2id$" in users_file and "$argon2id$" not in text and "_hash" not in text
    assert "users_file" not in text  # the roster is written in: the recording replays with nothing else
    site = site_from_text(text)
    assert [(u.id, u.role) for u in site.users] == [(u.id, u.role) for u in run["site"].users]
    assert {"op1", "sup1", "sup2", "P0186"} <= {u.id for u in site.users}


# -- tampering with the journal ------------------------------------------------------------------------------------
def test_a_changed_byte_is_found_at_its_row(run, capsys):
    sql(run["journal"], "UPDATE journal SET alarm_id = alarm_id || 'x' WHERE row = 4")
    v = verify_journal(run["journal"], fingerprint=run["fp"])
    assert not v.ok and v.bad_row == 4 and "was changed" in v.reason
    assert verify(run) == 1
    assert "NOT intact (first bad row: 4)" in capsys.readouterr().err


def test_a_deleted_row_is_found(run):
    sql(run["journal"], "DELETE FROM journal WHERE row = 3")
    v = verify_journal(run["journal"], fingerprint=run["fp"])
    assert not v.ok and v.bad_row == 4 and "deleted" in v.reason


def test_a_cut_tail_with_a_rewritten_head_is_found_by_the_seals(run, capsys):
    db = sqlite3.connect(run["journal"])
    n = db.execute("SELECT count(*) FROM journal").fetchone()[0]
    keep = db.execute("SELECT hash FROM journal WHERE row = ?", (n - 4,)).fetchone()[0]
    db.close()
    sql(run["journal"], ("DELETE FROM journal WHERE row > ?", (n - 4,)),
        ("UPDATE chain_head SET rows = ?, hash = ?", (n - 4, keep)))
    assert verify_journal(run["journal"]).ok is False  # the seals contradict it even unkeyed
    v = verify_journal(run["journal"], fingerprint=run["fp"])
    assert not v.ok and v.bad_row == n - 3 and f"rows, only {n - 4} are there" in v.reason  # the first seal past it
    assert verify(run) == 1
    assert "removed from the end" in capsys.readouterr().err


def test_a_changed_actor_with_the_chain_recomputed_is_found_by_the_seals(run, capsys):
    db = sqlite3.connect(run["journal"])
    row = db.execute("SELECT row FROM journal WHERE event = 'acknowledge' AND actor = 'sup1'").fetchone()[0]
    db.close()
    sql(run["journal"], ("UPDATE journal SET actor = 'op2' WHERE row = ?", (row,)))
    rehash_journal_from(run["journal"], row)
    db = sqlite3.connect(run["journal"])
    n = db.execute("SELECT count(*) FROM journal").fetchone()[0]
    db.close()
    v = verify_journal(run["journal"], fingerprint=run["fp"])
    assert not v.ok and "chain recomputed" in v.reason and v.bad_row is not None and v.bad_row <= row <= n
    assert verify(run) == 1
    assert "recomputed" in capsys.readouterr().err


def test_an_emptied_journal_is_never_intact(run, capsys):
    sql(run["journal"], "DELETE FROM journal", "DELETE FROM chain_head")
    v = verify_journal(run["journal"], fingerprint=run["fp"])
    assert not v.ok and "removed from the end" in v.reason  # the seals still say how many rows there were
    sql(run["journal"], "DELETE FROM seals")
    for args in ([], ["--site", str(run["site_file"])]):
        assert cli(["journal", "verify", str(run["journal"]), *args]) == 1
        out = capsys.readouterr()
        assert "not verifiable" in out.err and "intact" not in out.out + out.err


def test_rows_added_after_the_close_seal_are_found(run, capsys):
    db = sqlite3.connect(run["journal"])
    last = db.execute("SELECT row, input_seq, engine_ts_s, hash FROM journal ORDER BY row DESC LIMIT 1").fetchone()
    db.close()
    row = (last[0] + 1, last[1], last[2] + 1.0, "acknowledge", AID, "normal", "sup1", "supervisor", "{}")
    h = journal_hash(last[3], row)
    sql(run["journal"], ("INSERT INTO journal VALUES (?,?,?,?,?,?,?,?,?,?,?)", (*row, last[3], h)),
        ("UPDATE chain_head SET rows = ?, hash = ?", (row[0], h)))
    assert verify_journal(run["journal"]).ok  # a sound chain, unkeyed
    v = verify_journal(run["journal"], fingerprint=run["fp"])
    assert not v.ok and "1 rows after the close seal" in v.reason and v.bad_row == row[0]
    assert verify(run, "--allow-open") == 0  # a running engine may have rows it has not sealed yet
    assert "after the close seal" in capsys.readouterr().out


def test_a_removed_close_seal_is_a_failure_unless_the_engine_is_running(run, capsys):
    sql(run["journal"], "DELETE FROM seals WHERE close = 1")
    v = verify_journal(run["journal"], fingerprint=run["fp"])
    assert not v.ok and "no close seal: the run did not close cleanly, or its end was cut off" in v.reason
    assert verify(run) == 1
    capsys.readouterr()
    assert verify(run, "--allow-open") == 0
    assert "OPEN" in capsys.readouterr().out


def test_seals_re_signed_with_another_key_are_refused(run, capsys, tmp_path):
    other = init_key_dir(tmp_path / "other-keys")
    from alarms.keys import load_journal_signing_key

    signer = Signer(load_journal_signing_key(tmp_path / "other-keys"), run["site"].id)
    db = sqlite3.connect(run["journal"])
    for s in read_seals(db):
        forged = signer.sign(s.kind, s.rows, s.head, s.engine_ts_s, s.close)
        db.execute("UPDATE seals SET public_key = ?, signature = ? WHERE id = ?",
                   (forged.public_key, forged.signature, s.id))
    db.commit()
    db.close()
    assert signer.fingerprint == other != run["fp"]
    v = verify_journal(run["journal"], fingerprint=run["fp"])
    assert not v.ok and f"signed with another key ({other})" in v.reason
    assert verify(run) == 1
    assert "another key" in capsys.readouterr().err
    # the pinned public key left in place, the signature made with another key: the seal does not verify
    db = sqlite3.connect(run["journal"])
    db.execute("UPDATE seals SET public_key = ?", (bytes.fromhex(_raw_pub(run["keys"])),))
    db.commit()
    db.close()
    v = verify_journal(run["journal"], fingerprint=run["fp"])
    assert not v.ok and "signature does not match" in v.reason


def _raw_pub(keys):
    from cryptography.hazmat.primitives import serialization

    pub = serialization.load_pem_public_key((keys / "journal-signing.pub").read_bytes())
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def test_a_journal_that_is_not_what_its_recording_replays_to_is_reported_with_the_row(run, capsys):
    db = sqlite3.connect(run["journal"])
    row = db.execute("SELECT row FROM journal WHERE event = 'acknowledge'").fetchone()[0]
    db.close()
    sql(run["journal"], ("UPDATE journal SET actor = 'op2' WHERE row = ?", (row,)))
    rehash_journal_from(run["journal"], row)
    sql(run["journal"], "DELETE FROM seals")  # even with no seals to contradict it, the replay does
    assert cli(["journal", "verify", str(run["journal"]), "--recording", str(run["recording"])]) == 1
    err = capsys.readouterr().err
    assert f"does not match the replay of {run['recording']}: row {row} differs: actor is 'op2' in the journal, " \
           "'sup1' in the replay" in err


# -- tampering with the recording ----------------------------------------------------------------------------------
def test_a_changed_input_is_found(run, capsys):
    db = sqlite3.connect(run["recording"])
    seq, blob = db.execute("SELECT seq, frames FROM inputs WHERE topic = 'uwb.positions' ORDER BY seq LIMIT 1"
                           ).fetchone()
    db.close()
    forged = blob[:-1] + bytes([blob[-1] ^ 1])
    sql(run["recording"], ("UPDATE inputs SET frames = ? WHERE seq = ?", (forged, seq)))
    v = verify_recording(run["recording"], fingerprint=run["fp"])
    assert not v.ok and v.bad_row == seq and "was changed" in v.reason
    code = cli(["journal", "verify", str(run["journal"]), "--recording", str(run["recording"]), "--site",
                str(run["site_file"])])
    err = capsys.readouterr().err
    assert code == 1 and f"recording NOT intact (first bad input: {seq})" in err
    assert "not compared with a replay" in err


def test_a_changed_or_deleted_or_added_dead_letter_is_found(run):
    db = sqlite3.connect(run["recording"])
    (seq,) = db.execute("SELECT seq FROM dead_letters").fetchone()
    db.close()
    copy = run["recording"].with_name("copy.sqlite")
    shutil.copy(run["recording"], copy)
    sql(run["recording"], "UPDATE dead_letters SET payload = 'nothing to see'")
    v = verify_recording(run["recording"], fingerprint=run["fp"])
    assert not v.ok and v.bad_row == seq and "dead letters" in v.reason
    sql(run["recording"], "DELETE FROM dead_letters")
    assert verify_recording(run["recording"]).bad_row == seq
    sql(copy, ("INSERT INTO dead_letters VALUES (?, 'uwb', 'not_json', '', 'x', '')", (10**6,)))
    v = verify_recording(copy)
    assert not v.ok and "not in the chain" in v.reason


def test_a_cut_recording_with_a_rewritten_head_is_found(run):
    db = sqlite3.connect(run["recording"])
    n = db.execute("SELECT count(*) FROM inputs").fetchone()[0]
    keep = db.execute("SELECT hash FROM inputs WHERE seq = ?", (n - 4,)).fetchone()[0]
    db.close()
    sql(run["recording"], ("DELETE FROM inputs WHERE seq > ?", (n - 4,)),
        ("DELETE FROM dead_letters WHERE seq > ?", (n - 4,)),
        ("UPDATE chain_head SET rows = ?, hash = ?", (n - 4, keep)))
    v = verify_recording(run["recording"], fingerprint=run["fp"])
    assert not v.ok and "inputs were removed from the end" in v.reason


def test_the_input_hash_is_what_the_docs_say(run):
    db = sqlite3.connect(run["recording"])
    seq, topic, ts, blob, prev, h = db.execute("SELECT * FROM inputs WHERE seq = 2").fetchone()
    db.close()
    body = json.dumps([seq, topic, repr(ts), []], separators=(",", ":")).encode()
    assert hashlib.sha256(prev.encode() + body + b"\n" + blob).hexdigest() == h
    assert input_hash(prev, seq, topic, ts, blob, []) == h


# -- resume continues the chains --------------------------------------------------------------------------------
def test_an_engine_started_again_on_the_folder_continues_both_chains(run, demo_site):
    rows_before = verify_recording(run["recording"]).rows
    ctx = zmq.Context()
    site = _site(demo_site, run["out"], run["keys"], run["fp"])
    proc = EngineProcess(site, DEMO_SITE.read_text(), run["out"], ctx=ctx, notify=False)
    stop = threading.Event()
    stop.set()
    proc.run(stop)  # one last drain and a tick, then stop
    proc.close()
    ctx.term()
    r = verify_recording(run["recording"], fingerprint=run["fp"])
    j = verify_journal(run["journal"], fingerprint=run["fp"])
    assert r.proven and r.closed and r.rows == rows_before + 1
    assert j.proven and j.closed
    assert cli(["journal", "verify", str(run["journal"]), "--recording", str(run["recording"]),
                "--site", str(run["site_file"])]) == 0


# -- the key directory -----------------------------------------------------------------------------------------
def test_keys_init_makes_a_private_folder_and_key_and_never_overwrites(tmp_path, capsys):
    d = tmp_path / "keys"
    assert cli(["keys", "init", "--dir", str(d)]) == 0
    fp = capsys.readouterr().out.strip().splitlines()[-1]
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((d / "journal-signing.key").stat().st_mode) == 0o600
    assert fp.startswith("sha256:") and fp == read_journal_fingerprint(d)
    assert fp == fingerprint(bytes.fromhex(_raw_pub(d)))
    before = (d / "journal-signing.key").read_bytes()
    assert cli(["keys", "init", "--dir", str(d)]) == 1
    assert "never overwritten" in capsys.readouterr().err
    assert (d / "journal-signing.key").read_bytes() == before
    assert cli(["keys", "show", "--dir", str(d)]) == 0
    assert capsys.readouterr().out.strip() == fp
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    assert cli(["keys", "init", "--dir", str(loose)]) == 1
    assert "chmod 700" in capsys.readouterr().err


def test_the_engine_refuses_a_key_that_is_not_the_pinned_one(demo_site, tmp_path, caplog):
    import signal

    from ingest.engine import main as engine_main

    init_key_dir(tmp_path / "keys")
    pinned = "sha256:" + "ab" * 32
    site = _site(demo_site, tmp_path, tmp_path / "keys", pinned)
    with pytest.raises(KeyDirError, match="pins signing.fingerprint"):
        EngineProcess(site, DEMO_SITE.read_text(), tmp_path / "run", notify=False)
    assert not (tmp_path / "run" / "recording.sqlite").exists()
    site_file = tmp_path / "site.yaml"
    write_site(site, site_file)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert engine_main(["--site", str(site_file), "--out", str(tmp_path / "run")]) == 2
    finally:
        for sig, h in handlers.items():
            signal.signal(sig, h)
    assert "refusing to start" in caplog.text and not (tmp_path / "run" / "journal.sqlite").exists()
    no_dir = demo_site.model_copy(update={"signing": SigningSettings(fingerprint=pinned)})
    with pytest.raises(KeyDirError, match="names no key directory"):
        EngineProcess(no_dir, DEMO_SITE.read_text(), tmp_path / "run2", notify=False)


def test_the_site_file_names_the_key_dir_relative_to_itself(tmp_path, demo_site):
    from config import load_site

    fp = init_key_dir(tmp_path / "keys")
    data = yaml.safe_load(DEMO_SITE.read_text())
    data["signing"] = {"key_dir": "keys", "fingerprint": fp}
    data["floor_plan"].pop("image", None)
    data["access"]["users_file"] = str(DEMO_SITE.parent / data["access"]["users_file"])
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(data))
    site = load_site(tmp_path / "site.yaml")
    assert site.signing.key_dir == str((tmp_path / "keys").resolve())
