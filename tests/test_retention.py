"""Recording retention: the oldest recordings of the site go first, never the running one nor one younger than the
7-day floor; every removal is journaled by the engine from a recorded ``retention`` input, so the running
recording still verifies and replays to its journal byte for byte."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from alarms.journal import Journal
from config.schema import RecordingSettings
from console.cli import main as cli
from ingest import bus
from ingest.engine.audit import compare_with_replay
from ingest.engine.process import site_meta, tick_message
from ingest.engine.recording import FORMAT, RecordingWriter, verify_recording
from ingest.engine.retention import (
    DAY_S,
    RetentionKeeper,
    StoredRecording,
    plan_removals,
    scan_recordings,
)
from ingest.protocol import wire
from tests.engine_stack import EngineStack, ipc_site, site_yaml

NOW = 1_800_000_000.0
GB = 1_000_000_000


def rec(name: str, ended_days_ago: float, size: int = 1000, *, lasted_days: float = 1.0) -> StoredRecording:
    last = NOW - ended_days_ago * DAY_S
    return StoredRecording(Path(f"/r/{name}/recording.sqlite"), name, last - lasted_days * DAY_S, last, size, 10)


def names(plan) -> list[str]:
    return [r.recording.run for r in plan]


# -- the decision, by hand-made cases ------------------------------------------------------------------------
def test_recordings_older_than_the_retention_go_oldest_first_and_the_rest_stay():
    recs = [rec("b", 120), rec("recent", 3), rec("a", 400), rec("edge", 89.9), rec("c", 91)]
    plan = plan_removals(recs, now_s=NOW, retention_days=90)
    assert names(plan) == ["a", "b", "c"]
    assert plan[0].reason == "ended 400.0 days ago: older than the 90 days kept"


def test_the_running_recording_is_never_removed_however_old():
    recs = [rec("running", 500), rec("old", 200)]
    plan = plan_removals(recs, now_s=NOW, retention_days=90, max_total_bytes=1, running=Path("/r/running/recording.sqlite"))
    assert names(plan) == ["old"]


def test_a_size_limit_removes_the_oldest_until_the_total_fits_counting_the_running_one():
    recs = [rec("d1", 10, 4 * GB), rec("d2", 20, 4 * GB), rec("d3", 30, 4 * GB), rec("live", 0, 4 * GB)]
    plan = plan_removals(recs, now_s=NOW, retention_days=90, max_total_bytes=9 * GB,
                         running=Path("/r/live/recording.sqlite"))
    assert names(plan) == ["d3", "d2"]  # 16 GB -> 12 -> 8, within 9
    assert "the recordings take 16000000000 bytes, over the 9000000000 kept" in plan[0].reason


def test_the_floor_holds_against_a_size_limit_and_a_retention_below_it():
    recs = [rec("six-days", 6, 50 * GB), rec("two-days", 2, 50 * GB), rec("eight-days", 8, 50 * GB)]
    assert names(plan_removals(recs, now_s=NOW, retention_days=90, max_total_bytes=GB)) == ["eight-days"]
    # a retention under the floor (a typo that slipped past the schema) still keeps a week
    assert names(plan_removals(recs, now_s=NOW, retention_days=0.01)) == ["eight-days"]


def test_within_retention_and_size_nothing_goes_and_an_unknown_age_is_kept():
    recs = [rec("a", 30, GB), rec("b", 60, GB)]
    assert plan_removals(recs, now_s=NOW, retention_days=90, max_total_bytes=10 * GB) == []
    odd = StoredRecording(Path("/r/odd/recording.sqlite"), "odd", float("nan"), float("nan"), GB, 0)
    assert names(plan_removals([odd, rec("a", 200), rec("b", 100)], now_s=NOW, retention_days=90)) == ["a", "b"]


def test_the_schema_refuses_a_retention_below_the_floor_with_the_file_and_path():
    import yaml

    from config import DEMO_SITE, ConfigError, parse_site

    data = yaml.safe_load(DEMO_SITE.read_text())
    data["recording"] = {"retention_days": 0.9, "max_total_gb": 0.2}
    with pytest.raises(ConfigError) as ei:
        parse_site(data, "plant.yaml")
    text = str(ei.value)
    assert "plant.yaml: recording.retention_days: 0.9 days is below the floor of 7 days" in text
    assert "plant.yaml: recording.max_total_gb: 0.2 GB is below the floor of 1 GB" in text


# -- real recording files --------------------------------------------------------------------------------------
def write_recording(folder: Path, site_id: str, ticks_s: list[float], *, site=None, site_text: str = "") -> Path:
    """A recording of site ``site_id`` whose inputs are clock ticks taken at ``ticks_s`` (wall clock), closed, last
    changed when its last input was taken (as an engine leaves it). It keeps ``site`` (to be resumed) or no site."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = site_meta(site, site_text) if site is not None else {"site_id": site_id, "site_yaml": "", "format": FORMAT}
    w = RecordingWriter(folder / "recording.sqlite", meta)
    for t in ticks_s:
        m = tick_message(t)
        w.append(m.topic, bus.encode(m), t, None, m.source)
    w.commit()
    w.close()
    os.utime(folder / "recording.sqlite", (max(ticks_s), max(ticks_s)))
    return folder / "recording.sqlite"


def test_scan_reads_this_sites_recordings_and_passes_over_others_unreadable_ones_and_links(tmp_path):
    now = time.time()
    write_recording(tmp_path / "mine", "demo-plant", [now - 40 * DAY_S, now - 39 * DAY_S])
    write_recording(tmp_path / "theirs", "other-plant", [now - 40 * DAY_S])
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "recording.sqlite").write_bytes(b"not a database at all" * 100)
    (tmp_path / "linked").symlink_to(tmp_path / "mine")
    found, problems = scan_recordings(tmp_path, "demo-plant")
    assert [(r.run, r.inputs) for r in found] == [("mine", 2)]
    assert found[0].first_ts_s == pytest.approx(now - 40 * DAY_S) and found[0].last_ts_s == pytest.approx(now - 39 * DAY_S)
    assert found[0].bytes == (tmp_path / "mine" / "recording.sqlite").stat().st_size
    assert len(problems) == 1 and "garbled/recording.sqlite: not read, kept" in problems[0]


def test_a_keeper_pass_removes_the_old_recording_and_its_side_files_and_reports_it(tmp_path):
    now = time.time()
    old = write_recording(tmp_path / "old", "demo-plant", [now - 100 * DAY_S, now - 99 * DAY_S])
    Path(f"{old}-wal").write_bytes(b"w" * 10)
    (tmp_path / "old" / "journal.sqlite").write_bytes(b"kept")
    kept = write_recording(tmp_path / "kept", "demo-plant", [now - 10 * DAY_S])
    live = write_recording(tmp_path / "live", "demo-plant", [now - 400 * DAY_S])  # the oldest, but running
    # with a size limit every recording is read (none is passed over for a recent file time)
    keeper = RetentionKeeper(tmp_path, "demo-plant", live, RecordingSettings(retention_days=30, max_total_gb=1))
    keeper.run_pass()
    (result,) = keeper.results()
    assert not old.exists() and not Path(f"{old}-wal").exists() and kept.exists() and live.exists()
    assert (tmp_path / "old" / "journal.sqlite").read_bytes() == b"kept"  # only the recording goes
    assert result["failed"] == [] and result["retention_days"] == 30.0 and result["root"] == str(tmp_path.resolve())
    (entry,) = result["removed"]
    assert entry["file"] == "old/recording.sqlite" and entry["inputs"] == 2 and entry["bytes"] > 10
    assert entry["last_ts_s"] == pytest.approx(now - 99 * DAY_S)
    keeper.run_pass()
    assert keeper.results() == []  # nothing more to do: nothing reported


def test_a_keeper_over_a_size_limit_that_only_the_floor_keeps_says_so_and_removes_nothing(tmp_path, caplog):
    now = time.time()
    recent = write_recording(tmp_path / "recent", "demo-plant", [now - 3 * DAY_S])
    live = write_recording(tmp_path / "live", "demo-plant", [now - 400 * DAY_S])
    # 1 kB: far below the schema's floor (1 GB), as no site file can ask; the keeper's own floor still holds
    tiny = RecordingSettings.model_construct(retention_days=30.0, max_total_gb=1e-6, check_every_s=3600.0)
    keeper = RetentionKeeper(tmp_path, "demo-plant", live, tiny)
    keeper.run_pass()
    assert recent.exists() and live.exists() and keeper.results() == []
    assert "over recording.max_total_gb (1000), but the rest is the running recording or ended within the last " \
           "7 days: kept" in caplog.text


def test_a_removal_that_fails_is_reported_and_journaled_as_failed(demo_site, tmp_path, monkeypatch):
    from ingest.engine import Engine
    from ingest.engine import retention as retention_mod

    now = time.time()
    old = write_recording(tmp_path / "old", demo_site.id, [now - 100 * DAY_S])
    monkeypatch.setattr(retention_mod, "remove_recording", lambda r: "PermissionError: Operation not permitted")
    keeper = RetentionKeeper(tmp_path, demo_site.id, tmp_path / "live" / "recording.sqlite", RecordingSettings())
    keeper.run_pass()
    (result,) = keeper.results()
    assert old.exists() and result["removed"] == []
    assert result["failed"][0]["error"] == "PermissionError: Operation not permitted"
    journal = Journal(tmp_path / "journal.sqlite")
    engine = Engine(demo_site, journal)
    engine.apply(1, bus.Message(topic="engine.retention", source="engine", kind="retention", event_ts_s=now,
                                ingest_ts_s=now, meta=result))
    journal.close()
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    rows = db.execute("SELECT input_seq, event, alarm_id, actor, detail FROM journal").fetchall()
    db.close()
    assert [r[:4] for r in rows] == [(1, "recording_removal_failed", "engine.retention", "engine")]
    assert '"error":"PermissionError: Operation not permitted"' in rows[0][4] and '"file":"old/recording.sqlite"' in rows[0][4]
    assert engine.recordings_removed == 0


def test_a_keeper_stopped_before_a_removal_removes_nothing_more(tmp_path, monkeypatch):
    """Stopping is checked before every removal, the first too: the engine takes its last results after stop(),
    so a removal begun after it would never be journaled."""
    from ingest.engine import retention as retention_mod

    now = time.time()
    olds = [write_recording(tmp_path / f"old-{i}", "demo-plant", [now - (100 + i) * DAY_S]) for i in range(3)]
    live = tmp_path / "live" / "recording.sqlite"
    keeper = RetentionKeeper(tmp_path, "demo-plant", live, RecordingSettings())
    keeper.stop()  # before the pass: not a file goes
    keeper.run_pass()
    assert all(p.exists() for p in olds) and keeper.results() == []

    keeper = RetentionKeeper(tmp_path, "demo-plant", live, RecordingSettings())
    remove = retention_mod.remove_recording

    def remove_then_stop(r):  # the engine stops while the first removal is under way
        keeper.stop()
        return remove(r)

    monkeypatch.setattr(retention_mod, "remove_recording", remove_then_stop)
    keeper.run_pass()
    (result,) = keeper.results()
    assert [e["run"] for e in result["removed"]] == ["old-2"]  # the oldest, finished and reported; no other
    assert [p.exists() for p in olds] == [True, True, False]


def test_a_pass_over_long_non_ascii_run_names_is_split_into_inputs_the_bus_reads_back(demo_site, tmp_path):
    """JSON writes a character outside ASCII as one or two \\uXXXX (6 or 12 bytes): 50 entries with run folder names
    of 60 CJK characters outside the BMP are ~85 kB of header, over the 64 KiB the bus reads back. Each input must
    decode (a replay reads them from the recording), and every removal must be journaled once."""
    from ingest.engine import Engine
    from ingest.engine.retention import MAX_INPUT_META_BYTES

    now = time.time()
    root = tmp_path / ("記録𠮷" * 5)  # a root outside ASCII too (SQLite opens paths of at most 512 bytes)
    runs = [f"{i:02d}-" + "𠮷𩸽𠀋𡈽𢌞𣗄𤔅𥝱"[i % 8] * 60 for i in range(60)]  # 243 bytes of file name each
    for i, run in enumerate(runs):
        write_recording(root / run, demo_site.id, [now - (100 + i) * DAY_S])
    keeper = RetentionKeeper(root, demo_site.id, root / "live" / "recording.sqlite", RecordingSettings())
    keeper.run_pass()
    results = keeper.results()
    assert len(results) >= 2 and not any((root / run / "recording.sqlite").exists() for run in runs)
    journal = Journal(tmp_path / "journal.sqlite")
    engine = Engine(demo_site, journal)
    for seq, result in enumerate(results, start=1):
        msg = bus.Message(topic="engine.retention", source="engine", kind="retention", event_ts_s=now,
                          ingest_ts_s=now, meta=result)
        frames = bus.encode(msg)
        assert len(frames[1]) <= MAX_INPUT_META_BYTES + 1024 < bus.MAX_HEADER_BYTES
        engine.apply(seq, bus.decode(frames))  # as a replay reads it from the recording
    journal.close()
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    rows = db.execute("SELECT event, detail FROM journal").fetchall()
    db.close()
    assert {event for event, _ in rows} == {"recording_removed"} and engine.recordings_removed == 60
    assert sorted(json.loads(detail)["run"] for _, detail in rows) == sorted(runs)
    assert {json.loads(detail)["root"] for _, detail in rows} == {str(root.resolve())}


def test_over_long_texts_in_a_retention_input_are_cut_to_a_bound(demo_site, tmp_path, monkeypatch):
    """Texts no file system would give (a 4000-character run name, a long error in escaped characters) are cut, so
    even one entry cannot pass the bus's limit; what fits is kept whole."""
    from ingest.engine import retention as retention_mod
    from ingest.engine.retention import MAX_FIELD_BYTES

    old = NOW - 100 * DAY_S
    huge = [StoredRecording(tmp_path / f"{c * 4000}" / "recording.sqlite", c * 4000, old + i, old + i, 1, 1)
            for i, c in enumerate("a\x01𠮷")]  # removed in this order: the oldest first
    monkeypatch.setattr(retention_mod, "scan_recordings", lambda root, site, **kw: (huge, []))
    monkeypatch.setattr(retention_mod, "remove_recording", lambda r: "OSError: " + "\x02" * 5000)
    keeper = RetentionKeeper(tmp_path, demo_site.id, tmp_path / "live" / "recording.sqlite", RecordingSettings(),
                             clock=lambda: NOW)
    keeper.run_pass()
    entries = [e for result in keeper.results() for e in result["failed"]]
    assert len(entries) == 3
    for e in entries:
        for key in ("file", "run", "error"):
            assert 0 < len(json.dumps(e[key])) <= MAX_FIELD_BYTES
        assert e["error"].startswith("OSError: ") and e["file"].startswith(e["run"][:100])
    assert [e["run"] for e in entries] == ["a" * 2046, "\x01" * 341, "𠮷" * 170]  # whole characters that fit
    assert entries[0]["reason"].startswith("ended 100.0 days ago")


def test_retention_is_an_engine_only_kind():
    m = bus.Message(topic="engine.retention", source="gas", kind="retention", event_ts_s=1.0, ingest_ts_s=1.0,
                    meta={"removed": []})
    with pytest.raises(wire.PayloadError, match="may only come from the engine itself"):
        wire.check_message(m)


# -- through the engine ----------------------------------------------------------------------------------------
def test_the_engine_removes_old_recordings_at_start_journals_each_and_keeps_the_running_one(demo_site, tmp_path,
                                                                                              capsys):
    now = time.time()
    limits = RecordingSettings(max_total_gb=1.0)  # a size limit too: then even a recent file is read and judged
    site = ipc_site(demo_site, tmp_path, recording=limits)
    text = site_yaml(site)
    # the running recording began 200 days ago (an engine resuming its run folder): far past the retention
    running = write_recording(tmp_path / "live", site.id, [now - 200 * DAY_S, now - 200 * DAY_S + 0.1], site=site,
                              site_text=text)
    old = write_recording(tmp_path / "2026-01-run", site.id, [now - 120 * DAY_S, now - 119 * DAY_S])
    old_journal = Journal(tmp_path / "2026-01-run" / "journal.sqlite")
    old_journal.append(input_seq=1, engine_ts_s=now - 120 * DAY_S, event="activate", alarm_id="x", state="active_unack")
    old_journal.commit()
    old_journal.close()
    recent = write_recording(tmp_path / "last-week", site.id, [now - 5 * DAY_S])
    theirs = write_recording(tmp_path / "other-site", "other-plant", [now - 300 * DAY_S])
    old_bytes = old.stat().st_size
    with EngineStack(demo_site, tmp_path, out="live", site_text=text, recording=limits) as stack:
        removed = stack.wait_for(lambda: stack.journal("recording_removed"), what="a recording removed")
        summary = stack.stop()
    assert not old.exists()
    assert running.exists() and recent.exists() and theirs.exists()
    ((alarm_id, actor, detail),) = removed
    assert (alarm_id, actor) == ("engine.retention", "engine")
    assert detail["file"] == "2026-01-run/recording.sqlite" and detail["bytes"] == old_bytes
    assert detail["first_ts_s"] == pytest.approx(now - 120 * DAY_S) and detail["inputs"] == 2
    assert detail["reason"].startswith("ended 119.0 days ago: older than the 90 days kept")
    assert detail["root"] == str(tmp_path.resolve()) and detail["retention_days"] == 90.0
    assert detail["max_total_gb"] == 1.0
    assert summary["recordings_removed"] == 1

    # the removal is an input of the running recording: it verifies, and replays to the same journal
    journal = tmp_path / "live" / "journal.sqlite"
    check = verify_recording(running)
    assert check.ok, check.reason
    diff, rows = compare_with_replay(journal, running)
    assert diff is None and rows >= 1
    db = sqlite3.connect(f"file:{running}?mode=ro", uri=True)
    topics = [t for (t,) in db.execute("SELECT topic FROM inputs WHERE topic = 'engine.retention'")]
    db.close()
    assert topics == ["engine.retention"]

    # the removed run: its journal still verifies alone; with its recording, verify says the recording is gone
    capsys.readouterr()
    old_j = tmp_path / "2026-01-run" / "journal.sqlite"
    assert cli(["journal", "verify", str(old_j), "--recording", str(old)]) == 1
    got = capsys.readouterr()
    assert f"{old_j}: journal unsigned: chain intact" in got.out
    assert f"{old}: recording not verifiable: no recording at {old}" in got.err
