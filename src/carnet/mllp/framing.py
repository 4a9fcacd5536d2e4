"""The Minimal Lower Layer Protocol's framing: ``0x0B`` message ``0x1C 0x0D``.

HL7 v2.5.1 Implementation Guide, Appendix C (MLLP Release 1, kept by release 2): a message is
sent as a start block (VT, ``0x0B``), the message, and an end block (FS, ``0x1C``, then CR,
``0x0D``). The ACK comes back framed the same way.

The decoder is sans-I/O (bytes in, messages out) so the listener, the tests and the fuzzing all
drive the same code. What it does with what the wire brings:

- **Bytes outside a frame** (a stray CR after the end block, a sender's keep-alive, noise) are
  dropped: MLLP gives them no meaning, and a sender that restarts mid-stream must not poison the
  next frame. A peer that sends only noise is not speaking MLLP: past ``max_bytes`` of noise in
  a row the decoder gives up (``NotMllp``), so it cannot hold a connection open with rubbish.
- **A start block inside a frame** means the sender gave up on the frame and began again (it
  timed out waiting and reconnected on a multiplexer, say): the unfinished frame is dropped,
  never handed on half.
- **A lone ``0x1C``** (not followed by CR) stays part of the message; only the two-byte end
  block ends a frame.
- **A frame longer than ``max_bytes``** is refused as soon as the buffer passes the limit
  (``FrameTooLarge``), before the rest is read: the listener closes the connection, and the
  sender sees no ACK.
"""

from __future__ import annotations

from typing import Final

START_BLOCK: Final = b"\x0b"
END_BLOCK: Final = b"\x1c\x0d"


class FramingError(Exception):
    """The byte stream cannot be read as MLLP any longer: the connection should be closed."""


class FrameTooLarge(FramingError):
    """A frame grew past the limit before its end block."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"an MLLP frame exceeded {limit} bytes")
        self.limit = limit


class NotMllp(FramingError):
    """More noise than a frame may hold arrived without a single start block."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes arrived outside any MLLP frame")
        self.limit = limit


def frame(message: bytes) -> bytes:
    """``message`` between the start and the end block, as it goes on the wire."""
    return START_BLOCK + message + END_BLOCK


class FrameDecoder:
    """Turns the bytes of one connection into whole messages (without their blocks).

    ``feed`` returns every message completed by the bytes given, in order; an empty frame
    (``0x0B 0x1C 0x0D``) is returned as ``b""`` for the caller to answer. After a
    ``FramingError`` the decoder is spent: the caller closes the connection.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._frame = bytearray()
        self._in_frame = False
        # Where the search for the end block resumes: everything before it was already searched,
        # so a message arriving in many small reads is scanned once (not quadratically).
        self._searched = 0
        self._noise = 0
        self.dropped_bytes = 0  # noise and abandoned frames, for the listener's log

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held so far."""
        return len(self._frame) if self._in_frame else 0

    def feed(self, data: bytes) -> list[bytes]:
        """The messages that ``data`` completes; raises ``FramingError`` past the limits."""
        messages: list[bytes] = []
        position = 0
        while position < len(data):
            if not self._in_frame:
                position = self._skip_noise(data, position)
                continue
            position = self._read_frame(data, position, messages)
        return messages

    def _skip_noise(self, data: bytes, position: int) -> int:
        start = data.find(START_BLOCK, position)
        skipped = (len(data) if start < 0 else start) - position
        self._noise += skipped
        self.dropped_bytes += skipped
        if self._noise > self.max_bytes:
            raise NotMllp(self.max_bytes)
        if start < 0:
            return len(data)
        self._in_frame = True
        self._noise = 0
        self._frame.clear()
        self._searched = 0
        return start + 1

    def _read_frame(self, data: bytes, position: int, messages: list[bytes]) -> int:
        # Within this read: the next end block, or the next start block (a frame begun again).
        restart = data.find(START_BLOCK, position)
        chunk_end = len(data) if restart < 0 else restart
        self._frame += data[position:chunk_end]
        # The end block may straddle two reads: search from one byte before the unsearched part.
        end = self._frame.find(END_BLOCK, max(self._searched - 1, 0))
        if end >= 0:
            if end > self.max_bytes:
                raise FrameTooLarge(self.max_bytes)
            messages.append(bytes(self._frame[:end]))
            # What followed the end block in this read goes back to the outer loop (noise, or
            # the next frame's start): rewind to just after the end block.
            consumed_after = len(self._frame) - (end + len(END_BLOCK))
            self._in_frame = False
            self._frame.clear()
            self._searched = 0
            return chunk_end - consumed_after
        if len(self._frame) > self.max_bytes:
            raise FrameTooLarge(self.max_bytes)
        self._searched = len(self._frame)
        if restart >= 0:
            # The sender began a new frame before ending this one: drop the unfinished one.
            self.dropped_bytes += len(self._frame)
            self._frame.clear()
            self._searched = 0
            return restart + 1
        return chunk_end
