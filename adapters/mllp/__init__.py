"""MLLP (Minimal Lower Layer Protocol) for HL7 v2: framing and an asyncio listener.

Pure transport: no HL7 parsing and no policy. The listener hands each message to a handler and
frames whatever the handler answers.

    listener = MLLPListener(handler, ListenerConfig(port=2575, ssl=server_context(cert, key)))
"""

from __future__ import annotations

from ._framing import CR, EB, SB, FrameError, FrameReader, FrameTooLarge, frame
from ._server import Handler, ListenerConfig, LogLimiter, MLLPListener, Peer
from ._tls import server_context

__all__ = [
    "CR",
    "EB",
    "SB",
    "FrameError",
    "FrameReader",
    "FrameTooLarge",
    "Handler",
    "ListenerConfig",
    "LogLimiter",
    "MLLPListener",
    "Peer",
    "frame",
    "server_context",
]
