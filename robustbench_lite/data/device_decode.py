"""Decoding JPEGs on the run's device (`--decode device`): file bytes read in workers, one batched
`torchvision.io.decode_jpeg` per block, then timm's resize and centre crop as tensor ops.

Anything the device path cannot promise to decode like the CPU path (not a baseline or progressive
3-channel JPEG, EXIF-rotated, Adobe-marked, truncated, over Pillow's pixel limit, or refused by the
decoder) is decoded per file by the CPU path (`decode.DecodeDataset`), so skips and reasons match.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Sequence

import torch

from .datasets import Sample
from .decode import DecodeDataset, Geometry

DECODE_MODES = ("cpu", "device", "auto")
JPEG_FRAMES = (0xC0, 0xC1, 0xC2)  # baseline, extended and progressive Huffman frames
MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb limit: bigger photos go to the CPU path (refused there)


def resolve_decode(mode: str, device: torch.device) -> str:
    """`auto` decodes on the device when it is CUDA, else on the CPU; `device` is kept as asked."""
    if mode not in DECODE_MODES:
        from ..errors import UserError

        raise UserError(f"--decode {mode!r}: use one of {', '.join(DECODE_MODES)}")
    if mode == "auto":
        return "device" if device.type == "cuda" else "cpu"
    return mode


def _exif_orientation(segment: bytes) -> int | None:
    """The EXIF orientation tag of an APP1 payload, or None."""
    if not segment.startswith(b"Exif\0\0") or len(segment) < 14:
        return None
    tiff = segment[6:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return None
    try:
        (offset,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[offset : offset + 2])
        for k in range(count):
            entry = tiff[offset + 2 + 12 * k : offset + 14 + 12 * k]
            tag, _, _, value = struct.unpack(order + "HHI4s", entry)
            if tag == 0x0112:
                return struct.unpack(order + "H", value[:2])[0]
    except struct.error:
        return 0  # damaged EXIF: let the CPU path decide
    return None


def device_decodable(data: bytes) -> bool:
    """Whether a file's bytes are a whole 3-channel baseline/progressive JPEG needing no rotation."""
    if len(data) < 4 or data[:2] != b"\xff\xd8" or not data.rstrip(b"\0\r\n ").endswith(b"\xff\xd9"):
        return False
    pos, frame = 2, None
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        payload = data[pos + 4 : pos + 2 + length]
        if marker == 0xDA:  # start of scan: the header is over
            break
        if marker == 0xE1 and _exif_orientation(payload) not in (None, 1):
            return False
        if marker == 0xEE and payload.startswith(b"Adobe"):  # CMYK / YCCK / RGB-coded: Pillow's conversion
            return False
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if marker not in JPEG_FRAMES or len(payload) < 6:
                return False
            height, width = struct.unpack(">HH", payload[1:5])
            frame = (height, width, payload[5])
        pos += 2 + length
    return frame is not None and frame[2] == 3 and 0 < frame[0] * frame[1] <= MAX_PIXELS


class JpegBytesDataset(DecodeDataset):
    """Per sample: the file's bytes (uint8 tensor) when the device can decode it, else the CPU path's result."""

    def __getitem__(self, i: int):
        path = self.samples[i].path
        try:
            if path.is_file() and not self.samples[i].border:  # a framed photo is cropped on the CPU path
                data = path.read_bytes()
                if device_decodable(data):
                    return i, "jpeg", torch.frombuffer(bytearray(data), dtype=torch.uint8), None
        except OSError:
            pass  # the CPU path names the reason
        index, pixels, error = super().__getitem__(i)
        return index, "pixels", pixels, error


@dataclass
class RawBlock:
    """A block as the workers leave it: JPEG bytes for the device, CPU-decoded photos, failures."""

    jpeg: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    pixels: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)

    def pin_memory(self) -> "RawBlock":
        """Pinned copies, so the copy to the GPU can run beside compute (DataLoader's pin_memory hook)."""
        return RawBlock([(i, t.pin_memory()) for i, t in self.jpeg], [(i, t.pin_memory()) for i, t in self.pixels],
                        self.failed)


def collate_raw(items) -> RawBlock:
    """Sort worker items into JPEG bytes, CPU-decoded pixels and failures."""
    block = RawBlock()
    for i, kind, tensor, error in items:
        if tensor is None:
            block.failed.append((i, error))
        else:
            (block.jpeg if kind == "jpeg" else block.pixels).append((i, tensor))
    return block


def tensor_ops(geometry: Geometry) -> list | None:
    """timm's eval transform for `geometry` as (name, args) tensor ops, or None if it has other steps."""
    ops = []
    for op in geometry.pil_ops():
        name = type(op).__name__
        if name == "Resize" and op.max_size is None:
            ops.append(("resize", (list(op.size) if isinstance(op.size, (list, tuple)) else [op.size], op.interpolation)))
        elif name == "CenterCrop":
            ops.append(("crop", list(op.size)))
        else:
            return None
    return ops


def apply_geometry(image: torch.Tensor, ops: list) -> torch.Tensor:
    """One decoded (3, H, W) uint8 photo resized and cropped as timm's PIL ops do (antialiased)."""
    from torchvision.transforms.v2 import functional as TF

    for name, args in ops:
        if name == "resize":
            size, interpolation = args
            image = TF.resize(image, size, interpolation=interpolation, antialias=True)
        else:
            image = TF.center_crop(image, args)
    return image


def _decode_jpegs(data: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """Batched decode; when the batch is refused, file by file (None for each file the decoder refuses)."""
    import warnings

    with warnings.catch_warnings():  # torchvision 0.29 deprecates its image codecs for TorchCodec's
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_jpeg
    if not data:
        return []
    target = device if device.type == "cuda" else "cpu"
    if device.type == "cuda":
        # torchvision's nvJPEG decoder takes its output memory on this stream but writes it from a stream of
        # its own that does not wait for this one (pytorch/vision PR #9606, not merged): memory freed here
        # while queued kernels still read it could be overwritten. Let the queued work finish first.
        torch.cuda.current_stream(device).synchronize()
    try:
        return list(decode_jpeg(data, mode=ImageReadMode.RGB, device=target))
    except RuntimeError:
        out = []
        for tensor in data:
            try:
                out.append(decode_jpeg(tensor, mode=ImageReadMode.RGB, device=target))
            except RuntimeError:
                out.append(None)
        return out


def decode_block(block: RawBlock, samples: Sequence[Sample], geometry: Geometry,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, str]]]:
    """(indices, uint8 pixels on `device`, failures) for a raw block, in index order."""
    ops = tensor_ops(geometry)
    cpu = DecodeDataset(samples, geometry)
    pixels = [(i, t.to(device, non_blocking=True)) for i, t in block.pixels]
    failed = list(block.failed)
    jpeg = block.jpeg
    if ops is None:  # a crop mode the tensor ops do not mirror: every photo by the CPU path
        redo, jpeg = [i for i, _ in jpeg], []
    else:
        decoded = _decode_jpegs([t for _, t in jpeg], device)
        redo = [i for (i, _), image in zip(jpeg, decoded) if image is None]
        pixels += [(i, apply_geometry(image, ops)) for (i, _), image in zip(jpeg, decoded) if image is not None]
    for i in redo:
        _, image, error = cpu[i]
        if image is None:
            failed.append((i, error))
        else:
            pixels.append((i, image.to(device)))
    pixels.sort(key=lambda item: item[0])
    indices = torch.tensor([i for i, _ in pixels], dtype=torch.long)
    stacked = torch.stack([t for _, t in pixels]) if pixels else torch.empty(0, dtype=torch.uint8, device=device)
    return indices, stacked, sorted(failed)
