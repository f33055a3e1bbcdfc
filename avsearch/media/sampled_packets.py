"""Dropping video packets before the decoder: those of intra-only frames no sample instant will take
(sampled_packets), and all but keyframes where the decoder ignores skip_frame (keyframe_packets).

A sample instant takes the decoded frame nearest to it (the earlier one on a tie; see
decode._State.on_video). For an intra-only codec a packet holds one frame, decodes on its own and
comes in presentation order, so its frame's time is the packet's pts, known before decoding. Once
the next packet's time is known too, whether a frame is the nearest to some instant is decided
from three times: its own and its neighbours'. So each video packet is held back until the next
one arrives, and goes to the decoder only if its frame is taken. Decoding this subset gives the
same sampled frames as decoding every packet: every frame nearest to an instant is decoded, and
a frame that is nearest to an instant beats any other decoded frame for it.

Packets that break the premise (no pts, pts not increasing, a packet that is not a keyframe) are
all passed on from there: never fewer frames than needed, at worst the old cost.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional

import av

# (time of the previous packet's frame or None, this frame's time, the next one's or None) -> taken?
IsTaken = Callable[[Optional[float], float, Optional[float]], bool]


def sampled_packets(packets: Iterator[av.Packet], stream, is_taken: IsTaken) -> Iterator[av.Packet]:
    """`packets` (a demuxer's) without the packets of `stream` whose frames `is_taken` refuses.

    Packets of other streams pass at once. A demuxer error is raised after the held packet is
    passed on, so the frames before the damage are still decoded.
    """
    held: Optional[av.Packet] = None
    held_t = prev_t = None
    tick = float(stream.time_base) if getattr(stream, "time_base", None) else None
    dropping = True
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            if held is not None:
                yield held  # the last frame: instants after it take it (decode._State.finish)
            return
        except av.FFmpegError:
            if held is not None:
                yield held
            raise
        if packet.stream is not stream:
            yield packet
            continue
        t = _time(packet, tick)
        if not dropping or t is None or not packet.is_keyframe or (held_t is not None and t <= held_t):
            # A flush packet (end of stream) or a packet that breaks the premise: what is held
            # goes first, in order. A broken premise ends dropping for the rest of the stream.
            dropping = dropping and (t is None and packet.size == 0)
            if held is not None:
                yield held
                held = None
            prev_t = held_t = t
            yield packet
            continue
        if held is not None and is_taken(prev_t, held_t, t):
            yield held
        if held is not None:
            prev_t = held_t
        held, held_t = packet, t


def _time(packet: av.Packet, tick: Optional[float]) -> Optional[float]:
    # A float product: Fraction arithmetic per packet cost ~10% of a DV file's decoding.
    if packet.pts is None or tick is None:
        return None
    return packet.pts * tick


def keyframe_packets(packets: Iterator[av.Packet], stream) -> Iterator[av.Packet]:
    """`packets` with only the keyframes of `stream` (and its end-of-stream flush packet).

    Until a first keyframe is seen, every packet passes: a stream whose container does not flag
    keyframes is decoded whole rather than not at all.
    """
    seen_key = False
    for packet in packets:
        if packet.stream is stream and packet.size > 0:
            seen_key = seen_key or packet.is_keyframe
            if seen_key and not packet.is_keyframe:
                continue
        yield packet
