"""torchvision's RandomResizedCrop + RandomHorizontalFlip + ToTensor + Normalize, written with PIL
and torch (torchvision itself does not import beside the local CPU torch wheel on these machines).
Shared by the benchmarks' Python baselines (Tools/bench/bridge_photos.py, Tools/bench/remote_load.py)."""

import math
import random

import numpy as np
import torch
from PIL import Image

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def box(width, height):
    """A crop of scale 0.08-1 and ratio 3/4-4/3 (10 tries, then the centre square)."""
    area = width * height
    for _ in range(10):
        target = area * random.uniform(0.08, 1.0)
        ratio = math.exp(random.uniform(math.log(3 / 4), math.log(4 / 3)))
        w, h = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            return random.randint(0, width - w), random.randint(0, height - h), w, h
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side, side


def random_resized_crop(image, size):
    """`image` (PIL, any mode) as a normalized float32 CHW tensor of size x size."""
    image = image.convert("RGB")
    x, y, w, h = box(*image.size)
    image = image.resize((size, size), Image.BILINEAR, box=(x, y, x + w, y + h))
    if random.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    tensor = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255)
    return (tensor - MEAN) / STD
