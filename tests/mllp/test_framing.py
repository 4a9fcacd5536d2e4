"""MLLP framing (HL7 v2.5.1 IG Appendix C): 0x0B message 0x1C 0x0D, limits, noise, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carnet.mllp.framing import (
    END_BLOCK,
    START_BLOCK,
    FrameDecoder,
    FrameTooLarge,
    FramingError,
    NotMllp,
    frame,
)

MESSAGE = b"MSH|^~\\&|LAB|LAB|CARNET|CARNET|20260601120000||ORU^R01|42|P|2.5.1\rPID|1\r"


def _in_pieces(decoder: FrameDecoder, data: bytes, size: int) -> list[bytes]:
    messages: list[bytes] = []
    for start in range(0, len(data), size):
        messages += decoder.feed(data[start : start + size])
    return messages


class TestFrame:
    def test_wraps_the_message_in_the_start_and_end_blocks(self) -> None:
        assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\x0d"


class TestFrameDecoder:
    def test_one_frame_gives_its_message_without_the_blocks(self) -> None:
        assert FrameDecoder(1024).feed(frame(MESSAGE)) == [MESSAGE]

    def test_several_frames_in_one_read_come_out_in_order(self) -> None:
        data = frame(b"first") + frame(b"second") + frame(b"third")
        assert FrameDecoder(1024).feed(data) == [b"first", b"second", b"third"]

    @pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
    def test_a_frame_split_anywhere_across_reads_is_whole(self, size: int) -> None:
        data = frame(MESSAGE) + frame(b"next")
        assert _in_pieces(FrameDecoder(1024), data, size) == [MESSAGE, b"next"]

    def test_an_end_block_split_between_two_reads_ends_the_frame(self) -> None:
        decoder = FrameDecoder(1024)
        assert decoder.feed(b"\x0bMSH|x\x1c") == []
        assert decoder.feed(b"\x0d") == [b"MSH|x"]
        assert decoder.pending == 0

    def test_noise_before_between_and_after_frames_is_dropped(self) -> None:
        decoder = FrameDecoder(1024)
        data = b"\r\n garbage" + frame(b"one") + b"\r\r" + frame(b"two") + b"tail"
        assert decoder.feed(data) == [b"one", b"two"]
        assert decoder.dropped_bytes == len(b"\r\n garbage") + 2 + 4

    def test_a_lone_file_separator_stays_part_of_the_message(self) -> None:
        assert FrameDecoder(1024).feed(b"\x0bA\x1cB\x1c\x0d") == [b"A\x1cB"]

    def test_a_start_block_inside_a_frame_drops_the_unfinished_frame(self) -> None:
        # The sender gave up and began again: nothing half is ever handed on.
        decoder = FrameDecoder(1024)
        assert decoder.feed(b"\x0bMSH|half") == []
        assert decoder.feed(b"\x0bMSH|whole\x1c\x0d") == [b"MSH|whole"]

    def test_an_empty_frame_is_an_empty_message(self) -> None:
        assert FrameDecoder(1024).feed(b"\x0b\x1c\x0d") == [b""]

    def test_a_message_of_exactly_the_limit_is_accepted(self) -> None:
        assert FrameDecoder(10).feed(frame(b"x" * 10)) == [b"x" * 10]

    def test_a_frame_over_the_limit_is_refused_before_its_end_arrives(self) -> None:
        decoder = FrameDecoder(100)
        decoder.feed(START_BLOCK + b"x" * 100)
        with pytest.raises(FrameTooLarge) as refused:
            decoder.feed(b"x")
        assert refused.value.limit == 100

    def test_a_whole_frame_over_the_limit_in_one_read_is_refused(self) -> None:
        with pytest.raises(FrameTooLarge):
            FrameDecoder(10).feed(frame(b"x" * 11))

    def test_noise_past_the_limit_is_not_mllp(self) -> None:
        decoder = FrameDecoder(100)
        decoder.feed(b"G" * 100)
        with pytest.raises(NotMllp):
            decoder.feed(b"G")

    def test_noise_is_counted_afresh_after_each_frame(self) -> None:
        decoder = FrameDecoder(100)
        for _ in range(5):
            assert decoder.feed(b"n" * 90 + frame(b"m")) == [b"m"]

    def test_a_limit_below_one_byte_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError, match="positive"):
            FrameDecoder(0)


# --- Fuzzing: whatever the bytes and however they are cut, the decoder either returns messages
# that were framed, or raises a FramingError; never anything else, never a block inside.

_payload = st.binary(max_size=300).map(
    lambda data: data.replace(START_BLOCK, b"").replace(END_BLOCK, b"")
)


@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(1, 50), max_size=40))
def test_fuzz_random_bytes_only_ever_give_messages_or_a_framing_error(
    data: bytes, cuts: list[int]
) -> None:
    decoder = FrameDecoder(256)
    position = 0
    try:
        for size in [*cuts, len(data)]:
            for message in decoder.feed(data[position : position + size]):
                assert START_BLOCK not in message
                assert END_BLOCK not in message
                assert len(message) <= 256
            position += size
    except FramingError:
        pass


@given(
    payloads=st.lists(_payload, min_size=1, max_size=8),
    noise=st.lists(st.binary(max_size=20).map(lambda b: b.replace(START_BLOCK, b"")), max_size=8),
    size=st.integers(1, 97),
)
def test_fuzz_framed_messages_survive_noise_and_any_cutting(
    payloads: list[bytes], noise: list[bytes], size: int
) -> None:
    data = b""
    for index, payload in enumerate(payloads):
        data += (noise[index] if index < len(noise) else b"") + frame(payload)
    decoder = FrameDecoder(1024)
    assert _in_pieces(decoder, data, size) == payloads
