"""Loading photos into torch tensors from Python: Pyramid's bridge (pyramid_loader) against a
torchvision-style DataLoader, on the same photos, in one run.

    python Tools/bench/bridge_photos.py PHOTO_FOLDER PYRAMID_CACHE ROUNDS

Every row: random-resized crop (scale 0.08-1, ratio 3/4-4/3) + horizontal flip, batch 64, 2
workers, into torch tensors; best epoch of ROUNDS (the first epoch of each loader is not timed).
- bridge float32 at 224 and 112: NCHW normalized; bridge uint8 at 224: NHWC viewed as a
  channels-last NCHW tensor.
- DataLoader: an ImageFolder-like Dataset decoding each JPEG with PIL and cutting the crop as
  torchvision's RandomResizedCrop does (torchvision itself does not import beside the local CPU torch
  wheel on these machines), ToTensor + Normalize, `num_workers=2`.
Prints one JSON object (images/s per row).
"""

import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
from PIL import Image

import pyramid_loader as pl

BATCH, WORKERS = 64, 2


def best_epoch(make_epoch, rounds):
    """Images/s of the fastest of `rounds` epochs after one untimed epoch."""
    best = 0.0
    for r in range(rounds + 1):
        start, seen = time.perf_counter(), 0
        for images in make_epoch():
            seen += images.shape[0]
        rate = seen / (time.perf_counter() - start)
        if r > 0:
            best = max(best, rate)
    return best


def bridge(cache, size, output, rounds):
    loader = pl.Loader(cache, schedule=f"fixed:{size}", augment="rrc+flip", batch_size=BATCH, workers=WORKERS, output=output)
    epoch = [0]

    def one():
        loader.set_epoch(epoch[0])
        epoch[0] += 1
        for images, _ in loader:
            yield images
    return best_epoch(one, rounds)


class Folder(torch.utils.data.Dataset):
    """root/<class>/<image>, cut as torchvision's RandomResizedCrop + RandomHorizontalFlip +
    ToTensor + Normalize would."""

    def __init__(self, root, size):
        classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        self.items = [(os.path.join(root, c, f), i) for i, c in enumerate(classes) for f in sorted(os.listdir(os.path.join(root, c)))]
        self.size = size
        self.mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)

    def __len__(self):
        return len(self.items)

    def box(self, width, height):
        area = width * height
        for _ in range(10):
            target = area * random.uniform(0.08, 1.0)
            ratio = math.exp(random.uniform(math.log(3 / 4), math.log(4 / 3)))
            w, h = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
            if 0 < w <= width and 0 < h <= height:
                return random.randint(0, width - w), random.randint(0, height - h), w, h
        side = min(width, height)
        return (width - side) // 2, (height - side) // 2, side, side

    def __getitem__(self, i):
        path, label = self.items[i]
        image = Image.open(path).convert("RGB")
        x, y, w, h = self.box(*image.size)
        image = image.resize((self.size, self.size), Image.BILINEAR, box=(x, y, x + w, y + h))
        if random.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        tensor = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255)
        return (tensor - self.mean) / self.std, label


def dataloader(photos, size, rounds):
    data = torch.utils.data.DataLoader(Folder(photos, size), batch_size=BATCH, shuffle=True, num_workers=WORKERS,
                                       drop_last=True, persistent_workers=True)

    def one():
        for images, _ in data:
            yield images
    return best_epoch(one, rounds)


def main():
    photos, cache, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    result = {
        "bridgeFloat32_224": bridge(cache, 224, "float32", rounds),
        "bridgeFloat32_112": bridge(cache, 112, "float32", rounds),
        "bridgeUint8_224": bridge(cache, 224, "uint8", rounds),
        "dataLoader224": dataloader(photos, 224, rounds),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
