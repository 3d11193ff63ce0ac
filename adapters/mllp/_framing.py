"""MLLP framing only: ``VT message FS CR`` in, message bytes out. No decoding, no meaning.

The reader is fed whatever TCP delivers (frames split across reads or joined within one) and
returns complete frames; tests drive it with plain bytes, no sockets.
"""

from __future__ import annotations

__all__ = ["SB", "EB", "CR", "FrameError", "FrameTooLarge", "FrameReader", "frame"]

SB = b"\x0b"  # start block (VT)
EB = b"\x1c"  # end block (FS)
CR = b"\x0d"
END = EB + CR


class FrameError(Exception):
    """The byte stream cannot be framed; the connection should be closed."""


class FrameTooLarge(FrameError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"frame exceeds {limit} bytes")
        self.limit = limit


def frame(message: bytes) -> bytes:
    return SB + message + END


class FrameReader:
    """Incremental MLLP de-framer.

    Bytes outside a frame (before a VT) are junk: they are dropped and counted in
    ``discarded`` so the caller can log them. ``in_frame`` tells whether a frame has begun and
    not ended (the listener times such frames out).
    """

    def __init__(self, max_frame: int = 10 * 1024 * 1024) -> None:
        self.max_frame = max_frame
        self.discarded = 0
        self._buf = bytearray()
        self._open = False

    @property
    def in_frame(self) -> bool:
        return self._open

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        while True:
            if not self._open and not self._seek_start():
                break
            end = self._buf.find(END)
            if end < 0:
                # a lone FS may still be followed by CR in the next read: keep it
                if len(self._buf) > self.max_frame:
                    raise FrameTooLarge(self.max_frame)
                break
            if end > self.max_frame:
                raise FrameTooLarge(self.max_frame)
            frames.append(bytes(self._buf[:end]))
            del self._buf[: end + len(END)]
            self._open = False
        return frames

    def _seek_start(self) -> bool:
        start = self._buf.find(SB)
        if start < 0:
            self.discarded += len(self._buf)
            self._buf.clear()
            return False
        self.discarded += start
        del self._buf[: start + 1]
        self._open = True
        return True
