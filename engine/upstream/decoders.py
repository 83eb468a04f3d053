"""gzip and deflate bodies inflated in bounded steps, so a small bomb can neither allocate much nor hold the loop.

The connection's `Response` pushes compressed input in and asks for at most `STEP` decoded bytes at
a time; a paused stream keeps its input compressed until the reader wants more. Every step checks
what the body inflated to against its limit and, past `RATIO_FLOOR`, against its compression ratio.
"""

from __future__ import annotations

import zlib

from ..limits import Limits, describe
from .failures import BodyTooLarge, HTTPFailure

STEP = 64 * 1024  # the most one decompression step produces
RATIO_FLOOR = 1024 * 1024  # the compression ratio is checked once this much has been inflated


class Decoder:
    """gzip or deflate (zlib-wrapped or raw) decoding in bounded steps, checked against its limits.

    Input waits in `_input` (zlib's unconsumed tail) until `step` is called, so the reader decides
    how much is inflated; `produced` and `consumed` count decoded and compressed bytes.
    """

    __slots__ = (
        "_gzip",
        "_inflate",
        "_started",
        "_input",
        "_more",
        "produced",
        "consumed",
        "limit",
        "limit_name",
        "ratio",
    )

    def __init__(self, encoding: str, limits: Limits) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._inflate = zlib.decompressobj(47 if self._gzip else 15)
        self._started = False
        self._input = b""
        self._more = False  # the last step filled its output: zlib may hold more without new input
        self.produced = 0
        self.consumed = 0
        self.limit, self.limit_name = limits.decompressed_stream, "decompressed_stream"
        self.ratio = limits.compression_ratio

    @property
    def pending(self) -> bool:
        return bool(self._input) or self._more

    def push(self, data: bytes) -> None:
        self._input = self._input + data if self._input else data

    def step(self) -> bytes:
        """At most STEP decoded bytes of the pending input; BodyTooLarge past a limit."""
        data = self._input
        try:
            out = self._inflate.decompress(data, STEP)
        except zlib.error:
            if self._gzip or self._started:
                raise HTTPFailure("the response body is not valid compressed data") from None
            self._started = True  # one retry as raw deflate ("deflate" sent without its zlib header)
            self._inflate = zlib.decompressobj(-15)
            return self.step()
        self._started = True
        inflate = self._inflate
        self._input = inflate.unconsumed_tail
        self._more = len(out) == STEP and not inflate.eof
        if inflate.eof:
            self._input = b""  # anything after the end of the stream is not body
        self.consumed += len(data) - len(self._input)
        produced = self.produced = self.produced + len(out)
        if produced > self.limit:
            raise BodyTooLarge(f"answered more than {describe(self.limit)} once decompressed", self.limit_name)
        if produced > RATIO_FLOOR and produced > self.ratio * self.consumed:
            raise BodyTooLarge(
                f"answered compressed data that inflates more than {self.ratio} times", "compression_ratio"
            )
        return out
