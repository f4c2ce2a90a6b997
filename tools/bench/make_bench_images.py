#!/usr/bin/python3
"""Writes the preprocessing benchmark's images into DIR: a 12 MP phone-style JPEG (4032x3024,
quality 92, 4:2:0), a 1080p PNG and a 1120x1120 JPEG, with photo-like content (smooth color
fields, 8x8 blotches, luminance grain, hard-edged shapes) so they compress like photos do
(~4 MB for the 12 MP JPEG) rather than like synthetic gradients."""
import sys

import numpy as np
from PIL import Image, ImageDraw


def photo(w, h, rng):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([128 + 90 * np.sin(x / w * 6.1 + y / h * 2.3),
                     128 + 80 * np.cos(y / h * 5.2 - x / w * 1.7),
                     120 + 70 * np.sin((x + y) / (w + h) * 9.0)], -1)
    blotches = rng.normal(0, 18, (h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
    blotches = np.kron(blotches, np.ones((8, 8, 1), np.float32))[:h, :w]
    grain = rng.normal(0, 9, (h, w, 1)).astype(np.float32)
    image = Image.fromarray(np.clip(base + blotches + grain, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        draw.ellipse([x0, y0, x0 + rng.integers(20, w // 6), y0 + rng.integers(20, h // 6)],
                     fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return image


def main(out_dir):
    rng = np.random.default_rng(7)
    photo(4032, 3024, rng).save(f"{out_dir}/phone_12mp.jpg", quality=92, subsampling=2)
    photo(1920, 1080, rng).save(f"{out_dir}/frame_1080p.png")
    photo(1120, 1120, rng).save(f"{out_dir}/square_1120.jpg", quality=92, subsampling=2)


if __name__ == "__main__":
    main(sys.argv[1])
