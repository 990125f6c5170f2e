"""A tiny PNG reader for the tests (8-bit grey, grey+alpha, RGB, RGBA; no interlacing), via zlib."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    pixels: bytes  # rows of width * channels bytes, unfiltered

    def luminance(self) -> list[int]:
        """One 0..255 value per pixel (the mean of the colour channels; alpha ignored)."""
        c, px = self.channels, self.pixels
        colour = 1 if c in (1, 2) else 3
        return [sum(px[i:i + colour]) // colour for i in range(0, len(px), c)]

    def ink(self, threshold: int = 200) -> float:
        """The fraction of pixels darker than ``threshold``."""
        lum = self.luminance()
        return sum(v < threshold for v in lum) / max(1, len(lum))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png(path: Path) -> Image:
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    assert ihdr is not None, "no IHDR"
    width, height, depth, colour, _, _, interlace = ihdr
    assert depth == 8 and colour in _CHANNELS and interlace == 0, f"unsupported PNG {ihdr}"
    bpp = _CHANNELS[colour]
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    out = bytearray()
    prev = bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ftype == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif ftype == 2:
            row = bytearray((r + p) & 0xFF for r, p in zip(row, prev))
        elif ftype == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                up_left = prev[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + _paeth(left, prev[i], up_left)) & 0xFF
        else:
            assert ftype == 0, f"bad PNG filter {ftype}"
        out += row
        prev = row
    return Image(width, height, bpp, bytes(out))
