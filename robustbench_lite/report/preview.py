"""Preview grids: what the model sees, one row per (photo, transform), one column per level."""
from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from ..conditions.application import apply_transform
from ..conditions.keys import Condition, parse_severities
from ..conditions.registry import TransformSpec, get_transform
from ..errors import ConditionFailed, UserError

PAPER = (255, 255, 255)
INK = (20, 20, 20)
FRAME = (150, 150, 150)  # a thin frame round every tile, so a white border still shows on the white page
GAP = 4


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizing
        return ImageFont.load_default()


def _to_pil(image: Tensor, tile: int | None) -> Image.Image:
    array = (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    picture = Image.fromarray(array, "RGB")
    if tile is not None and picture.size != (tile, tile):
        picture = picture.resize((tile, round(tile * picture.height / picture.width)), Image.LANCZOS)
    return picture


def _resolve(specs: Sequence[TransformSpec | str]) -> list[TransformSpec]:
    return [get_transform(s) if isinstance(s, str) else s for s in specs]


def transformed_rows(
    images: Tensor,
    specs: Sequence[TransformSpec | str],
    severities: Sequence[int] | None = None,
    seed: int = 0,
    image_ids: Sequence[str] | None = None,
) -> list[tuple[str, str, list[tuple[str, Tensor]]]]:
    """(image id, transform name, [(caption, image)]) per row, seeded exactly like a run."""
    ids = list(image_ids) if image_ids is not None else [f"image{i}" for i in range(len(images))]
    rows = []
    with torch.no_grad():
        for index, image_id in enumerate(ids):
            photo = images[index : index + 1]
            for spec in _resolve(specs):
                cells = [("clean", photo[0])]
                for number, level in enumerate(spec.severities, start=1):
                    if severities is not None and number not in severities:
                        continue
                    try:
                        out = apply_transform(spec, photo, Condition(spec.name, number, level), [image_id], seed)[0]
                        cells.append((f"{number}: {level:g}", out.clamp(0, 1)))
                    except ConditionFailed:  # a faulty plug-in fails its own tile, never the grid
                        cells.append((f"{number}: failed", torch.full_like(photo[0], 0.5)))
                rows.append((image_id, spec.name, cells))
    return rows


def preview_grid(
    images: Tensor,
    specs: Sequence[TransformSpec | str],
    severities: Sequence[int] | None = None,
    seed: int = 0,
    image_ids: Sequence[str] | None = None,
    tile: int | None = None,
) -> Image.Image:
    """A labelled grid: rows = photos x transforms, columns = clean then each level.

    `images` is (N, 3, H, W) in [0, 1] at the model's geometry; `severities` are 1-based level
    numbers (None = all); `tile` resizes each cell for display (None = the model's pixels).
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got {tuple(images.shape)}")
    rows = transformed_rows(images, specs, severities, seed, image_ids)
    pictures = [[(caption, _to_pil(t, tile)) for caption, t in cells] for _, _, cells in rows]
    cell_w, cell_h = pictures[0][0][1].size
    font = _font(max(11, cell_w // 14))
    caption_h = font.getbbox("Ag")[3] + 6
    many = len(images) > 1
    labels = [f"{image_id}\n{name}" if many else name for image_id, name, _ in rows]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max(measure.multiline_textbbox((0, 0), text, font=font)[2] for text in labels) + 2 * GAP
    columns = max(len(cells) for cells in pictures)
    width = label_w + columns * (cell_w + GAP) + GAP
    height = len(pictures) * (cell_h + caption_h + GAP) + GAP
    canvas = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(canvas)
    for row, (label, cells) in enumerate(zip(labels, pictures)):
        top = GAP + row * (cell_h + caption_h + GAP)
        draw.multiline_text((GAP, top + cell_h // 2), label, fill=INK, font=font, anchor="lm")
        for column, (caption, picture) in enumerate(cells):
            left = label_w + column * (cell_w + GAP)
            _paste_framed(canvas, draw, picture, left, top)
            draw.text((left + cell_w // 2, top + cell_h + 2), caption, fill=INK, font=font, anchor="ma")
    return canvas


def _paste_framed(canvas: Image.Image, draw: ImageDraw.ImageDraw, picture: Image.Image, left: int, top: int) -> None:
    canvas.paste(picture, (left, top))
    draw.rectangle((left - 1, top - 1, left + picture.width, top + picture.height), outline=FRAME)


def compact_grid(images: Tensor, specs: Sequence[TransformSpec | str], severities: Sequence[int] | None = None,
                 seed: int = 0, image_ids: Sequence[str] | None = None, tile: int = 112, columns: int = 8,
                 conditions: set[tuple[str, int]] | None = None) -> Image.Image:
    """The report's example grid: per photo its clean tile once, then one tile per condition (only
    `conditions`' (transform, severity) when given), wrapped `columns` to a line."""
    photos = _condition_tiles(images, _resolve(specs), severities, seed, image_ids, conditions)
    font = _font(11)
    caption_h = font.getbbox("Ag")[3] + 6
    title_h = caption_h + GAP
    per_line = min(columns, max(len(t) for t in photos.values()))
    cell_w = tile
    lines = [-(-len(t) // per_line) for t in photos.values()]
    cell_h = max(_to_pil(t, tile).height for tiles in photos.values() for _, t in tiles[:1])
    width = GAP + per_line * (cell_w + GAP)
    height = GAP + sum(title_h + n * (cell_h + caption_h + GAP) for n in lines)
    canvas = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(canvas)
    top = GAP
    for image_id, tiles in photos.items():
        draw.text((GAP, top), image_id, fill=INK, font=font)
        top += title_h
        for k, (caption, t) in enumerate(tiles):
            left = GAP + (k % per_line) * (cell_w + GAP)
            y = top + (k // per_line) * (cell_h + caption_h + GAP)
            _paste_framed(canvas, draw, _to_pil(t, tile), left, y)
            draw.text((left + cell_w // 2, y + cell_h + 2), _fit_text(draw, caption, font, cell_w), fill=INK,
                      font=font, anchor="ma")
        top += -(-len(tiles) // per_line) * (cell_h + caption_h + GAP)
    return canvas


def _condition_tiles(images: Tensor, specs: list[TransformSpec], severities: Sequence[int] | None, seed: int,
                     image_ids: Sequence[str] | None, conditions: set[tuple[str, int]] | None) -> dict[str, list]:
    """Per photo: its clean tile, then one tile per (transform, level) shown, each condition applied once to
    all the photos together (a photo's seed depends on its id only, so the batch changes no pixel)."""
    ids = list(image_ids) if image_ids is not None else [f"image{i}" for i in range(len(images))]
    photos = {image_id: [("clean", images[i])] for i, image_id in enumerate(ids)}
    with torch.no_grad():
        for spec in specs:
            for number, level in enumerate(spec.severities, start=1):
                wanted = (spec.name, number) in conditions if conditions is not None else \
                    severities is None or number in severities
                if not wanted:
                    continue
                try:
                    out = apply_transform(spec, images, Condition(spec.name, number, level), ids, seed).clamp(0, 1)
                except ConditionFailed:  # a faulty plug-in fails its own tiles, never the grid
                    out = torch.full_like(images, 0.5)
                for i, image_id in enumerate(ids):
                    photos[image_id].append((f"{spec.name} {number}", out[i]))
    return photos


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """`text`, shortened with an ellipsis in the middle until it fits `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    keep = len(text)
    while keep > 4 and draw.textlength(text[: keep // 2] + "…" + text[-(keep - keep // 2):], font=font) > width:
        keep -= 1
    return text[: keep // 2] + "…" + text[-(keep - keep // 2):]


def save_preview(path: str | Path, images: Tensor, specs: Sequence[TransformSpec | str], **options) -> Path:
    """Render `preview_grid(images, specs, **options)` to `path` (format from the suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    preview_grid(images, specs, **options).save(path)
    return path


def photos_to_preview(path: str | Path, count: int) -> list[Path]:
    """A photo file, or `count` photos of a folder (spread over classes when it is a dataset)."""
    from ..data.datasets import is_image_file, open_dataset, spread_over_classes

    path = Path(path)
    if path.is_file():
        return [path]
    try:
        return [s.path for s in spread_over_classes(open_dataset(path).samples)[:count]]
    except UserError:
        files = sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p))
        if not files:
            raise UserError(f"{path}: no photos to preview") from None
        return files[:count]


def preview_from_paths(photos: str | Path, transforms: str, severities: str | None, output: str | Path,
                       size: int = 224, count: int = 1, seed: int = 0) -> Path:
    """Decode photos like a model of input `size` (timm's default preprocessing at that side) and save their grid."""
    from ..conditions.selection import select_transforms
    from ..data.decode import UndecodablePhoto, load_rgb, to_uint8_chw
    from ..models.preprocessing import resolve_preprocessing

    ops = resolve_preprocessing(None, input_size=size).geometry.pil_ops()
    paths = photos_to_preview(photos, count)
    tensors = []
    for p in paths:
        try:
            img = load_rgb(p)
        except UndecodablePhoto as exc:
            raise UserError(f"{p}: cannot decode ({exc})") from None
        for op in ops:
            img = op(img)
        tensors.append(to_uint8_chw(img).float() / 255)
    specs = select_transforms(transforms)
    return save_preview(output, torch.stack(tensors), specs, severities=parse_severities(severities), seed=seed,
                        image_ids=[Path(p).name for p in paths])


def write_run_examples(path: str | Path, samples, geometry, specs, severities, seed: int, count: int = 2,
                       conditions: set[tuple[str, int]] | None = None) -> Path | None:
    """The report's example grid: a few of the run's photos under every transform and level, as the
    first model group sees them, with the run's own seeds."""
    from ..data.decode import DecodeDataset

    tensors, ids = [], []
    decoder = DecodeDataset(samples[: count * 4], geometry)
    for i in range(len(decoder)):
        _, pixels, _ = decoder[i]
        if pixels is not None:
            tensors.append(pixels.float() / 255)
            ids.append(samples[i].id)
        if len(tensors) == count:
            break
    if not tensors or not specs:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compact_grid(torch.stack(tensors), specs, severities=severities, seed=seed, image_ids=ids,
                 conditions=conditions).save(path)
    return path


def start_run_examples(path: str | Path, samples, geometry, specs, severities, seed: int,
                       conditions: set[tuple[str, int]] | None = None) -> Future:
    """`write_run_examples` in a background thread: the transforms release the GIL, so the grid is drawn while
    the report's tables and figures are made; `render_report(..., examples=future)` waits for it."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="report-examples")
    future = pool.submit(write_run_examples, path, samples, geometry, specs, severities, seed, conditions=conditions)
    pool.shutdown(wait=False)
    return future
