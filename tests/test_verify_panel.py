"""The workstation's "Cameras" panel without a server (console/web/workstation/verify_panel.py): what it keeps is
bounded (snapshots fetched, snapshots whose fetch failed), and a snapshot whose boxes are not all finite numbers
(a value the engine could not send as JSON arrives as null) still shows, without those boxes."""

from __future__ import annotations

import concurrent.futures

from console.auth import Credential, LoggedIn
from console.web.theme import Theme
from console.web.tiles import TileContext
from console.web.workstation.verify_panel import MAX_FAILED_FETCHES, MAX_IMAGES, VerifyPanel, snapshot_html


def _detection(k: int) -> dict:
    return {"id": f"D{k}", "camera": "CAM1", "class": "person", "raised_ts_s": 1.0e9 + k, "frames": 2,
            "confidence": 0.9, "snapshot": {"sha256": f"{k:064x}", "ts_s": 1.0e9 + k}, "snapshot_held": True,
            "image_px": [1920, 1080], "boxes": []}


class BlobLink:
    """Answers ``detections`` with ``n`` pending detections and ``blob_get`` with ``blob_ok`` (the picture or a
    refusal), at once; keeps the requests."""

    def __init__(self, n: int) -> None:
        self.pending = [_detection(k) for k in range(1, n + 1)]
        self.blob_ok = False
        self.sent: list[dict] = []

    def submit(self, request: dict) -> concurrent.futures.Future:
        self.sent.append(request)
        if request["op"] == "detections":
            reply = {"ok": True, "pending": self.pending, "recent": [], "false_positive_rates": []}
        elif self.blob_ok:
            reply = {"ok": True, "sha256": request["sha256"], "data_b64": "QUJD"}
        else:
            reply = {"ok": False, "reason": f"no blob {request['sha256']}: not received yet, or evicted"}
        fut: concurrent.futures.Future = concurrent.futures.Future()
        fut.set_result(reply)
        return fut


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _panel(demo_site, n: int) -> tuple[VerifyPanel, BlobLink, Clock]:
    link, clock = BlobLink(n), Clock()
    panel = VerifyPanel(link, TileContext(site=demo_site, lang="en", theme=Theme(scale=0.5)), clock=clock)
    panel.set_user(Credential(LoggedIn("sup1", "Shift supervisor", "supervisor"), "t0", "s1", 900.0, clock=clock))
    panel.update()  # asks for the detections
    panel.update()  # takes them: D1 selected
    return panel, link, clock


def _look_at_each(panel: VerifyPanel, link: BlobLink, clock: Clock) -> None:
    """Select every pending detection in turn, long enough for its snapshot to be asked for and answered."""
    for rec in link.pending:
        panel.select.value = rec["id"]
        panel.update()  # asks for its snapshot
        clock.now += 0.1
        panel.update()  # takes the answer


def test_failed_snapshot_fetches_are_remembered_for_the_newest_few_only(demo_site):
    panel, link, clock = _panel(demo_site, MAX_FAILED_FETCHES + 10)
    _look_at_each(panel, link, clock)
    asked = [r["sha256"] for r in link.sent if r["op"] == "blob_get"]
    assert len(asked) == MAX_FAILED_FETCHES + 10  # each asked for once, each refused
    shas = [r["snapshot"]["sha256"] for r in link.pending]
    assert list(panel._blob_failed) == shas[-MAX_FAILED_FETCHES:]  # the newest failures, in order

    # the selected one is not asked again within the pause; after it, it is, and a picture that comes is kept and
    # its failure forgotten
    n = len(link.sent)
    panel.update()
    assert len(link.sent) == n
    link.blob_ok = True
    clock.now += 2.0
    panel.update()
    panel.update()
    assert link.sent[-1] == {"op": "blob_get", "sha256": shas[-1], "user": "sup1", "token": "t0"}
    assert panel.images == {shas[-1]: "QUJD"} and shas[-1] not in panel._blob_failed


def test_fetched_snapshots_are_kept_for_the_most_recently_used_few(demo_site):
    panel, link, clock = _panel(demo_site, MAX_IMAGES + 3)
    link.blob_ok = True
    _look_at_each(panel, link, clock)
    shas = [r["snapshot"]["sha256"] for r in link.pending]
    assert list(panel.images) == shas[-MAX_IMAGES:] and not panel._blob_failed


def test_a_snapshot_with_a_box_the_engine_could_not_send_still_shows_its_other_boxes():
    rec = {"id": "D1", "snapshot": {"sha256": "ab" * 32, "ts_s": 1.0}, "snapshot_held": True, "image_px": [1920, 1080],
           "boxes": [{"class": "person", "confidence": 0.91, "box_px": [1700, 10, 1800, 300], "finding": True},
                     {"class": "person", "confidence": 0.8, "box_px": [None, 20, 400, 220], "finding": False},
                     {"class": "person", "confidence": None, "box_px": [300, 20, 400, 220], "finding": False},
                     {"class": "person", "confidence": 0.7, "box_px": "x", "finding": False}]}
    page = snapshot_html(rec, ("ab" * 32, "QUJD"), "en")
    assert page.count("<rect") == 2 and "<title>person 0.00</title>" in page
    # the finding's label stays inside the picture: a box at the top right is labelled below it, towards the left
    assert '<text x="1800.0" y="352.0" text-anchor="end"' in page and "\u25b2 person 0.91</text>" in page
