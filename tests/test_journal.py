"""The hash-chained journal: intact verifies; a changed byte, a deleted row, swapped rows or a cut tail fail,
naming the first bad row."""

from __future__ import annotations

import sqlite3

import pytest

from alarms.journal import Journal, verify_journal
from console.cli import main as cli


@pytest.fixture
def journal(tmp_path):
    path = tmp_path / "journal.sqlite"
    j = Journal(path)
    for i in range(1, 11):
        j.append(input_seq=i, engine_ts_s=1000.0 + i, event="activate" if i % 2 else "clear",
                 alarm_id=f"zone.restricted:Z-SUB:T{i:04d}", state="active_unack", detail={"i": i})
        j.commit()
    j.close()
    return path


def test_intact_unsigned_journal_verifies_as_a_chain_but_is_not_proven(journal, capsys):
    r = verify_journal(journal)
    assert r.ok and r.rows == 10 and not r.signed and not r.proven
    assert cli(["journal", "verify", str(journal)]) == 1  # no seals, no key: nothing is proven (tests/test_seal.py)
    assert "unsigned: chain intact but not proven (10 rows" in capsys.readouterr().out


def _edit(path, sql, *args):
    db = sqlite3.connect(path)
    db.execute(sql, args)
    db.commit()
    db.close()


def test_one_changed_byte_is_found_at_its_row(journal, capsys):
    _edit(journal, "UPDATE journal SET alarm_id = 'zone.restricted:Z-SUB:T0005' WHERE row = 4")
    r = verify_journal(journal)
    assert not r.ok and r.bad_row == 4 and "was changed" in r.reason
    assert cli(["journal", "verify", str(journal)]) == 1
    assert "first bad row: 4" in capsys.readouterr().err


def test_changed_timestamp_is_found(journal):
    _edit(journal, "UPDATE journal SET engine_ts_s = engine_ts_s + 1e-9 WHERE row = 7")
    assert verify_journal(journal).bad_row == 7


def test_deleted_row_is_found(journal):
    _edit(journal, "DELETE FROM journal WHERE row = 6")
    r = verify_journal(journal)
    assert not r.ok and r.bad_row == 7 and "deleted" in r.reason


def test_swapped_rows_are_found(journal):
    db = sqlite3.connect(journal)
    rows = {r[0]: r for r in db.execute("SELECT * FROM journal WHERE row IN (3, 4)")}
    db.execute("DELETE FROM journal WHERE row IN (3, 4)")
    db.execute("INSERT INTO journal VALUES (?,?,?,?,?,?,?,?,?,?,?)", (3, *rows[4][1:]))
    db.execute("INSERT INTO journal VALUES (?,?,?,?,?,?,?,?,?,?,?)", (4, *rows[3][1:]))
    db.commit()
    db.close()
    r = verify_journal(journal)
    assert not r.ok and r.bad_row == 3


def test_cut_tail_is_found_through_the_chain_head(journal):
    _edit(journal, "DELETE FROM journal WHERE row = 10")
    r = verify_journal(journal)
    assert not r.ok and "removed from the end" in r.reason


def test_not_a_journal(tmp_path):
    p = tmp_path / "x.sqlite"
    p.write_bytes(b"hello" * 100)
    assert not verify_journal(p).ok
    assert not verify_journal(tmp_path / "none.sqlite").ok


def test_resume_checks_stored_rows_then_appends(journal):
    j = Journal(journal, resume=True)
    for i in range(1, 11):  # the engine regenerates the same rows from its recording
        j.append(input_seq=i, engine_ts_s=1000.0 + i, event="activate" if i % 2 else "clear",
                 alarm_id=f"zone.restricted:Z-SUB:T{i:04d}", state="active_unack", detail={"i": i})
    assert not j.resuming
    j.append(input_seq=11, engine_ts_s=1011.0, event="clear", alarm_id="a", state="normal")
    j.commit()
    j.close()
    r = verify_journal(journal)
    assert r.ok and r.rows == 11


def test_resume_refuses_a_row_the_recording_does_not_give(journal):
    j = Journal(journal, resume=True)
    with pytest.raises(ValueError, match="row 1 does not match what the recording gives"):
        j.append(input_seq=1, engine_ts_s=1001.0, event="clear", alarm_id="x", state="normal")


def test_resume_refuses_a_tampered_journal(journal):
    _edit(journal, "UPDATE journal SET actor = 'someone' WHERE row = 2")
    with pytest.raises(ValueError, match="cannot resume .*row 2 was changed"):
        Journal(journal, resume=True)
