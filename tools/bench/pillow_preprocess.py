#!/usr/bin/python3
"""The peer for the preprocessing benchmark: Pillow + numpy doing what GLM-4V's image processor
does (open, RGB, bicubic resize to SIZE x SIZE, /255, CLIP mean/std, CHW float32), median ms of
N runs per file, printed as 'FILE MS'."""
import io
import statistics
import sys
import time

import numpy as np
from PIL import Image

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)


def preprocess(data, size):
    image = Image.open(io.BytesIO(data)).convert("RGB").resize((size, size), Image.BICUBIC)
    pixels = np.asarray(image, np.float32) / 255.0
    return ((pixels - MEAN) / STD).transpose(2, 0, 1).copy()


def main():
    size, runs = int(sys.argv[1]), int(sys.argv[2])
    for path in sys.argv[3:]:
        data = open(path, "rb").read()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            preprocess(data, size)
            times.append((time.perf_counter() - start) * 1e3)
        print(path, f"{statistics.median(times):.1f}")


if __name__ == "__main__":
    main()
