#!/usr/bin/env python3
"""Golden fixtures for the Imaging module: small JPEG / PNG / WebP files and the RGB8 pixels that
transformers' `load_image` gets from Pillow for each (`ImageOps.exif_transpose`, then
`convert("RGB")`).

Requirements: pip install pillow numpy pypng   (written with Pillow 13.0.0, pypng 0.20220715.0)
Run from the repository root:  python3 tools/golden/imaging_fixtures.py

Writes Tests/ImagingTests/Fixtures/:
  <name>.<ext>      the encoded image
  <name>.rgb        Pillow's decoded RGB8 bytes, row-major HWC
  expected.json     per fixture: file, width, height, codec ("same" when Swift and Pillow decode
                    with the same algorithm and must agree exactly), Pillow's mode, and versions
Output is deterministic for a given Pillow / libjpeg-turbo / libwebp.
"""
import io
import json
import os
import struct
import zlib

import numpy as np
import png  # pypng: writes 1/2/4/16-bit and interlaced PNGs, which Pillow cannot
from PIL import Image, ImageOps, features

OUT = os.path.join("Tests", "ImagingTests", "Fixtures")
WIDTH, HEIGHT = 40, 24  # not square, so a wrong EXIF rotation changes the shape


def base_rgb(width=WIDTH, height=HEIGHT, seed=0):
    """A gradient with a bright corner block and a little noise: asymmetric, JPEG-friendly."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                      (x + y) * 255 // max(width + height - 2, 1)], axis=-1).astype(np.int32)
    image[: height // 3, : width // 4] = [250, 30, 30]
    image += rng.integers(-12, 13, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def exif_bytes(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def pil_save(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def pypng_bytes(rows, width, height, **options):
    buffer = io.BytesIO()
    png.Writer(width, height, **options).write(buffer, rows)
    return buffer.getvalue()


def add_png_chunk_before_iend(data, chunk_type, payload):
    chunk = struct.pack(">I", len(payload)) + chunk_type + payload
    chunk += struct.pack(">I", zlib.crc32(chunk_type + payload) & 0xFFFFFFFF)
    return data[:-12] + chunk + data[-12:]


def jpeg_fixtures():
    rgb = Image.fromarray(base_rgb())
    items = {
        "jpeg_baseline_420": pil_save(rgb, "JPEG", quality=90),
        "jpeg_baseline_444": pil_save(rgb, "JPEG", quality=90, subsampling=0),
        "jpeg_baseline_422": pil_save(rgb, "JPEG", quality=75, subsampling=1),
        "jpeg_progressive": pil_save(rgb, "JPEG", quality=85, progressive=True),
        "jpeg_odd_size": pil_save(Image.fromarray(base_rgb(33, 17, seed=1)), "JPEG", quality=80),
        "jpeg_gray": pil_save(rgb.convert("L"), "JPEG", quality=90),
        "jpeg_cmyk": pil_save(rgb.convert("CMYK"), "JPEG", quality=90),
    }
    for orientation in range(1, 9):
        items[f"jpeg_exif_{orientation}"] = pil_save(rgb, "JPEG", quality=90, exif=exif_bytes(orientation))
    return {name: (data, "jpg") for name, data in items.items()}


def png_fixtures():
    rgb = base_rgb()
    alpha = np.random.default_rng(5).integers(0, 256, (HEIGHT, WIDTH), dtype=np.uint8)
    rgba = np.dstack([rgb, alpha])
    gray = Image.fromarray(rgb).convert("L")
    palette = Image.fromarray(rgb).quantize(colors=16, dither=Image.Dither.NONE)
    wide = np.random.default_rng(7).integers(0, 65536, (HEIGHT, WIDTH, 4)).astype(np.uint16)
    # 16-bit gray with many values under 256, where Pillow's clamp (not the high byte) shows.
    gray16 = np.concatenate([wide[: HEIGHT // 2, :, 0] % 300, wide[HEIGHT // 2:, :, 0]])

    def rows(array):
        return [list(map(int, row.reshape(-1))) for row in array]

    items = {
        "png_rgb8": pil_save(Image.fromarray(rgb), "PNG"),
        "png_rgba8": pil_save(Image.fromarray(rgba, "RGBA"), "PNG"),
        "png_gray8": pil_save(gray, "PNG"),
        "png_gray_alpha8": pil_save(Image.merge("LA", [gray, Image.fromarray(alpha)]), "PNG"),
        "png_palette": pil_save(palette, "PNG"),
        "png_palette_trns": pil_save(palette, "PNG", transparency=3),
        "png_rgb16": pypng_bytes(rows(wide[..., :3]), WIDTH, HEIGHT, greyscale=False, bitdepth=16),
        "png_rgba16": pypng_bytes(rows(wide), WIDTH, HEIGHT, greyscale=False, alpha=True, bitdepth=16),
        "png_gray16": pypng_bytes(rows(gray16), WIDTH, HEIGHT, greyscale=True, bitdepth=16),
        "png_gray_alpha16": pypng_bytes(rows(wide[..., :2]), WIDTH, HEIGHT, greyscale=True, alpha=True,
                                        bitdepth=16),
        "png_gray1": pypng_bytes(rows(np.asarray(gray) >> 7), WIDTH, HEIGHT, greyscale=True, bitdepth=1),
        "png_gray2": pypng_bytes(rows(np.asarray(gray) >> 6), WIDTH, HEIGHT, greyscale=True, bitdepth=2),
        "png_gray4": pypng_bytes(rows(np.asarray(gray) >> 4), WIDTH, HEIGHT, greyscale=True, bitdepth=4),
        "png_interlaced_rgb8": pypng_bytes(rows(rgb), WIDTH, HEIGHT, greyscale=False, bitdepth=8,
                                           interlace=True),
        "png_interlaced_gray16": pypng_bytes(rows(gray16), WIDTH, HEIGHT, greyscale=True, bitdepth=16,
                                             interlace=True),
        "png_exif_6": pil_save(Image.fromarray(rgb), "PNG", exif=exif_bytes(6)),
        # eXIf after the image data: Pillow still applies it (getexif loads the whole file).
        "png_exif_8_after_idat": add_png_chunk_before_iend(pil_save(Image.fromarray(rgb), "PNG"), b"eXIf",
                                                           exif_bytes(8)[6:]),
    }
    return {name: (data, "png") for name, data in items.items()}


def webp_fixtures():
    rgb = Image.fromarray(base_rgb())
    alpha = Image.fromarray(np.random.default_rng(9).integers(0, 256, (HEIGHT, WIDTH), dtype=np.uint8))
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    items = {
        "webp_lossless": pil_save(rgb, "WEBP", lossless=True),
        "webp_lossless_alpha": pil_save(rgba, "WEBP", lossless=True, exact=True),
        "webp_lossy": pil_save(rgb, "WEBP", quality=80),
        "webp_lossy_alpha": pil_save(rgba, "WEBP", quality=80),
        "webp_exif_6": pil_save(rgb, "WEBP", lossless=True, exif=exif_bytes(6)),
    }
    return {name: (data, "webp") for name, data in items.items()}


def same_codec(name):
    """True where Swift and Pillow run the same algorithm and must agree bit for bit."""
    return name.startswith("png_") or name.startswith("webp_lossless") or name.startswith("webp_exif")


def main():
    os.makedirs(OUT, exist_ok=True)
    fixtures = {**jpeg_fixtures(), **png_fixtures(), **webp_fixtures()}
    expected = []
    for name, (data, ext) in sorted(fixtures.items()):
        file = f"{name}.{ext}"
        with open(os.path.join(OUT, file), "wb") as handle:
            handle.write(data)
        opened = Image.open(io.BytesIO(data))
        mode = opened.mode
        # transformers.image_utils.load_image: exif_transpose, then convert("RGB").
        decoded = ImageOps.exif_transpose(opened).convert("RGB")
        pixels = np.asarray(decoded, dtype=np.uint8)
        with open(os.path.join(OUT, f"{name}.rgb"), "wb") as handle:
            handle.write(pixels.tobytes())
        expected.append({"name": name, "file": file, "width": decoded.width, "height": decoded.height,
                         "pillow_mode": mode, "exact": same_codec(name)})
    meta = {"pillow": Image.__version__, "libjpeg_turbo": features.version("libjpeg_turbo"),
            "libwebp": features.version("webp"), "fixtures": expected}
    with open(os.path.join(OUT, "expected.json"), "w") as handle:
        json.dump(meta, handle, indent=1, sort_keys=True)
        handle.write("\n")
    print(f"wrote {len(expected)} fixtures to {OUT}")


if __name__ == "__main__":
    main()
