"""MLLP framing stays linear in the bytes received, and junk is counted over a connection's life
(issue #15): fed as TCP delivers it, without sockets."""

from __future__ import annotations

from adapters.mllp import EB, SB, FrameReader, LogLimiter, frame


def test_an_open_frame_is_not_rescanned_on_every_read() -> None:
    reader = FrameReader(max_frame=10 * 1024 * 1024)
    reader.feed(SB)
    chunk = b"x" * 64 * 1024
    reads = 140  # about 9 MB, as in the issue
    for _ in range(reads):
        assert reader.feed(chunk) == []
    assert reader.examined <= reads * (len(chunk) + 1)  # rescanning would be ~70 times more
    assert reader.feed(b"y" + EB + b"\r") == [b"x" * len(chunk) * reads + b"y"]


def test_a_frame_end_split_between_two_reads_is_found() -> None:
    reader = FrameReader()
    assert reader.feed(SB + b"abc" + EB) == []
    assert reader.feed(b"\r" + frame(b"next")) == [b"abc", b"next"]


def test_junk_is_counted_over_all_reads_not_per_read() -> None:
    reader = FrameReader()
    for _ in range(1000):
        reader.feed(b"GET / HTTP/1.1\r\n")
    assert reader.discarded == 16 * 1000
    assert reader.feed(frame(b"msg")) == [b"msg"]
    assert reader.discarded == 16 * 1000


def test_repeated_log_lines_are_held_back_and_counted(caplog) -> None:  # type: ignore[no-untyped-def]
    now = [0.0]
    limiter = LogLimiter(10.0, clock=lambda: now[0])
    caplog.set_level("INFO", logger="adapters.mllp")
    told = [limiter(20, "junk", "MLLP %s: refused", f"peer{i}") for i in range(1000)]
    assert told.count(True) == 1
    assert limiter(20, "idle", "MLLP %s: idle", "peer") is True  # another kind is not held back
    now[0] = 10.5
    assert limiter(20, "junk", "MLLP %s: refused", "peer-last") is True
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert lines == [
        "MLLP peer0: refused",
        "MLLP peer-last: refused (999 more like this held back)",
    ]
