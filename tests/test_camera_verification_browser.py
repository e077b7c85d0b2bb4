"""Camera verification in Debian's Chromium, against the real engine and a real console process: a supervisor
opens the workstation's "Cameras" tab, sees each detection's snapshot (the frame that raised it, checked by the
SHA-256 of the image bytes the page shows) with its boxes, confirms one and marks one a false positive with a
reason; the false-positive rate of that camera and class is then exactly 50 % at the workstation, on the wall's
key-figures tile and in ``watchfloor kpi``.

The panel lives in the workstation's "Cameras" tab (console/web/workstation/verify_panel.py, wired in page.py)."""

from __future__ import annotations

import base64
import subprocess
import sys
import time

import pytest

from ingest.protocol.blobs import sha256_hex
from tests.engine_stack import (
    REPO,
    EngineStack,
    camera_frame,
    chromium,
    console_process,
    detections_of_frame,
    snapshot_blob,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ALARM = "camera.untagged_person:CAM1"
REASON = "a mannequin by the fence"


@pytest.fixture(scope="module")
def console(demo_site, tmp_path_factory):
    """Two sightings of an untagged person by CAM1 (two detections of CAM1 / person, each raised by its second
    frame; the snapshots of both frames of each sighting are in the blob store, so only the right hash passes),
    and a console process serving /workstation and /wall."""
    folder = tmp_path_factory.mktemp("camera-verification")
    # hold_s: frames older than this when the engine takes them are ignored, so it is the slack a loaded machine
    # has between sending a frame and the engine applying it (1.5 s is little when two test workers share 2 cores)
    fusion = demo_site.detection_fusion.model_copy(update={"untagged_grace_s": 0.0, "hold_s": 4.0})
    with EngineStack(demo_site, folder, detection_fusion=fusion) as stack:
        site, raising = stack.site, []
        for k in range(2):
            t = time.time()
            boxes = ([[700 + 300 * k, 450, 800 + 300 * k, 850]], [[712 + 300 * k, 450, 812 + 300 * k, 850]])
            frames = [camera_frame(site, "CAM1", b) for b in boxes]
            for dt, b, f in zip((0.0, 0.5), boxes, frames):
                stack.send(snapshot_blob(site, "CAM1", t + dt, f))
                stack.send(detections_of_frame(site, "CAM1", t + dt, b, jpeg=f))
            raising.append(sha256_hex(frames[1]))
            stack.wait_for(lambda n=k + 1: len(stack.raw_command(op="detections")["pending"]) == n,
                           what=f"detection {k + 1} raised", timeout_s=20)
            stack.wait_alarm(ALARM, "rtn_unack", timeout_s=20)  # the sighting is over: the next is a new detection
        with console_process(stack, folder / "console.log") as base:
            yield stack, base, raising


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _shown_snapshot(page, sha: str) -> bytes:
    """The bytes of the snapshot image the page shows once it shows ``sha`` (decoded from its data: URL)."""
    img = page.locator(f'img[data-sha256="{sha}"]')
    img.wait_for(timeout=20_000)
    src = img.get_attribute("src")
    assert src.startswith("data:image/jpeg;base64,")
    return base64.b64decode(src.split(",", 1)[1])


def test_a_supervisor_confirms_one_detection_and_marks_one_false_positive_at_50_percent(console, browser):
    from playwright.sync_api import expect

    stack, base, raising = console
    d1, d2 = (r["id"] for r in stack.raw_command(op="detections")["pending"])
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        page.goto(f"{base}/workstation", timeout=60_000)
        page.get_by_placeholder("User id").fill("sup1")
        page.get_by_placeholder("Password").fill("demo")
        page.get_by_role("button", name="Log in").click()
        page.get_by_text("Shift supervisor (sup1), Shift supervisor").wait_for(timeout=20_000)
        page.get_by_role("button", name="Cameras", exact=True).click()  # the workstation's tab bar
        page.get_by_text("2 pending").wait_for(timeout=20_000)

        # the oldest first: its snapshot is the frame that raised it, boxes drawn over it
        assert sha256_hex(_shown_snapshot(page, raising[0])) == raising[0]
        assert page.locator("svg rect").count() >= 1
        page.get_by_role("button", name="Confirmed", exact=True).click()
        page.get_by_text(f"Confirmed {d1}: accepted by the engine").wait_for(timeout=10_000)

        # then the other: a false positive needs its reason
        assert sha256_hex(_shown_snapshot(page, raising[1])) == raising[1]
        false_positive = page.get_by_role("button", name="False positive", exact=True)
        false_positive.click()
        page.get_by_text("A false positive needs a reason").wait_for(timeout=10_000)
        page.get_by_placeholder("reason (required for a false positive)").fill(REASON)
        false_positive.click()
        page.get_by_text(f"False positive {d2}: accepted by the engine").wait_for(timeout=10_000)
        row = page.locator('tr[data-fp="CAM1:person"]')
        expect(row).to_contain_text("50 %", timeout=10_000)
        assert [c.inner_text() for c in row.locator("td").all()][2:] == ["1", "1", "50 %"]
    finally:
        page.close()

    # the engine journaled both verdicts, the reason with the false positive
    verdicts = [(e, a, actor, d.get("detection"), d.get("reason")) for e, a, actor, d in stack.journal_rows()
                if e in ("detection_confirmed", "detection_rejected")]
    assert verdicts == [("detection_confirmed", ALARM, "sup1", d1, ""),
                        ("detection_rejected", ALARM, "sup1", d2, REASON)]

    # the wall's key figures: CAM1 / person, 1 of 2 verified a false positive: 50 %
    wall = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        wall.goto(f"{base}/wall?scale=0.5", timeout=60_000)
        figure = wall.locator('[data-kpi="fp:CAM1:person"]')
        expect(figure.locator(".wf-kpi-value")).to_have_text("50 %", timeout=20_000)
        expect(figure.locator(".wf-kpi-note")).to_have_text("1 of 2 verified")
    finally:
        wall.close()

    # and `watchfloor kpi` from the journal
    cli = subprocess.run([sys.executable, "-m", "console.cli", "kpi", str(stack.out_dir / "journal.sqlite")],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert "  CAM1 person: 1 confirmed, 1 false positive(s), false-positive rate 50.0 %" in cli.stdout
