"""MLLP framing without sockets: frames split across reads, joined in one, junk, size limits."""

from __future__ import annotations

import pytest

from adapters.mllp import CR, EB, SB, FrameReader, FrameTooLarge, frame


def test_a_frame_split_across_many_reads_comes_out_whole() -> None:
    reader = FrameReader()
    wire = frame(b"MSH|^~\\&|A\rPID|1")
    out = []
    for i in range(len(wire)):
        out += reader.feed(wire[i : i + 1])
    assert out == [b"MSH|^~\\&|A\rPID|1"]
    assert not reader.in_frame


def test_frames_joined_in_one_read_come_out_in_order() -> None:
    reader = FrameReader()
    assert reader.feed(frame(b"one") + frame(b"two") + SB + b"thr") == [b"one", b"two"]
    assert reader.in_frame
    assert reader.feed(b"ee" + EB) == []  # FS alone is not the end yet: CR may follow
    assert reader.feed(CR) == [b"three"]


def test_bytes_outside_frames_are_dropped_and_counted() -> None:
    reader = FrameReader()
    assert reader.feed(b"junk\x00\xff" + frame(b"msg") + b"\r\n") == [b"msg"]
    assert reader.discarded == 8


def test_a_frame_over_the_limit_is_refused_even_before_it_ends() -> None:
    reader = FrameReader(max_frame=100)
    reader.feed(SB + b"x" * 60)
    with pytest.raises(FrameTooLarge):
        reader.feed(b"x" * 60)


def test_a_complete_frame_over_the_limit_is_refused() -> None:
    reader = FrameReader(max_frame=10)
    with pytest.raises(FrameTooLarge):
        reader.feed(frame(b"y" * 11))


def test_a_frame_at_the_limit_is_accepted() -> None:
    reader = FrameReader(max_frame=10)
    assert reader.feed(frame(b"y" * 10)) == [b"y" * 10]
