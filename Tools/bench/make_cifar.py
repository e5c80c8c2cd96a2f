"""Writes a synthetic CIFAR-10 in the binary format (data_batch_1..5.bin, test_batch.bin: records of
one label byte and 3x32x32 bytes, red plane, green, blue) so that a CIFAR-sized run needs no
download: N training images (default 50,000) and N/5 test images, each a class-dependent colour
gradient and a class-dependent stripe orientation under noise, so that a model learns something.

    python3 make_cifar.py DIR [N]"""
import os, sys
import numpy as np

out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 50000
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:32, 0:32].astype(np.float32) / 31


def images(count):
    labels = rng.integers(0, 10, count).astype(np.uint8)
    angle = labels.astype(np.float32) * np.pi / 10
    stripes = np.sin(12 * (np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy))
    hue = labels.astype(np.float32) / 10
    planes = [0.5 + 0.4 * np.cos(2 * np.pi * (hue + k / 3))[:, None, None] * (xx + yy) / 2 for k in range(3)]
    pixels = np.stack([p + 0.2 * stripes for p in planes], axis=1)
    pixels += rng.normal(0, 0.15, pixels.shape).astype(np.float32)
    data = np.clip(pixels * 255, 0, 255).astype(np.uint8).reshape(count, 3 * 32 * 32)
    return np.concatenate([labels[:, None], data], axis=1)


per = n // 5
for b in range(5):
    images(per).tofile(os.path.join(out, f"data_batch_{b + 1}.bin"))
images(max(1, n // 5)).tofile(os.path.join(out, "test_batch.bin"))
