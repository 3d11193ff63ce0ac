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
    """Incremental MLLP de-framer, linear in the bytes fed: a frame still open is never
    rescanned from its start (the search for its end resumes where the last one stopped), and
    consumed bytes are dropped once per read.

    Bytes outside a frame (before a VT) are junk: they are dropped and counted in ``discarded``
    (cumulatively, for the connection's life) so the caller can log them and stop a junk
    stream. ``examined`` counts the bytes searched for frame ends (linear: about the bytes
    fed). ``in_frame`` tells whether a frame has begun and not ended (the listener times such
    frames out).
    """

    def __init__(self, max_frame: int = 10 * 1024 * 1024) -> None:
        self.max_frame = max_frame
        self.discarded = 0
        self.examined = 0
        self._buf = bytearray()
        self._open = False
        self._scanned = 0  # bytes of the open frame already searched for its end

    @property
    def in_frame(self) -> bool:
        return self._open

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0  # bytes of buf consumed by this call
        while True:
            if not self._open:
                start = buf.find(SB, pos)
                if start < 0:
                    self.discarded += len(buf) - pos
                    pos = len(buf)
                    break
                self.discarded += start - pos
                pos = start + 1
                self._open = True
                self._scanned = 0
            # resume one byte back: FS may have been the last byte of the previous read
            resume = pos + max(self._scanned - 1, 0)
            end = buf.find(END, resume)
            self.examined += (len(buf) if end < 0 else end + len(END)) - resume
            if end < 0:
                self._scanned = len(buf) - pos
                if self._scanned > self.max_frame:
                    raise FrameTooLarge(self.max_frame)
                break
            if end - pos > self.max_frame:
                raise FrameTooLarge(self.max_frame)
            frames.append(bytes(buf[pos:end]))
            pos = end + len(END)
            self._open = False
        del buf[:pos]
        return frames
