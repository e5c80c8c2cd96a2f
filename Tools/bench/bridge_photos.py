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
- NVIDIA DALI's CPU pipeline, when `nvidia.dali` imports (`pip install nvidia-dali-cuda120`; it
  runs without a GPU with `device_id=None`): file reader over the same folder, libjpeg-turbo
  decode on the CPU (`fn.decoders.image_random_crop`: decode of the crop window only, the same
  scale and ratio ranges), resize to 224, flip and normalize into float32 NCHW
  (`fn.crop_mirror_normalize`), 2 threads, into torch tensors through DALIGenericIterator.
Prints one JSON object (images/s per row; a row that could not run gives its error).
"""

import json
import os
import sys
import time

import torch
from PIL import Image

import pyramid_loader as pl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pil_crop import random_resized_crop  # noqa: E402

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
    ToTensor + Normalize would (Tools/bench/pil_crop.py)."""

    def __init__(self, root, size):
        classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        self.items = [(os.path.join(root, c, f), i) for i, c in enumerate(classes) for f in sorted(os.listdir(os.path.join(root, c)))]
        self.size = size

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        return random_resized_crop(Image.open(path), self.size), label


def dataloader(photos, size, rounds):
    data = torch.utils.data.DataLoader(Folder(photos, size), batch_size=BATCH, shuffle=True, num_workers=WORKERS,
                                       drop_last=True, persistent_workers=True)

    def one():
        for images, _ in data:
            yield images
    return best_epoch(one, rounds)


def dali(photos, size, rounds):
    """DALI's CPU pipeline (see the module's docstring); raises ImportError without DALI."""
    from nvidia.dali import fn, pipeline_def, types
    from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

    @pipeline_def(batch_size=BATCH, num_threads=WORKERS, device_id=None, prefetch_queue_depth=2)
    def pipe():
        jpegs, labels = fn.readers.file(file_root=photos, random_shuffle=True, name="reader")
        images = fn.decoders.image_random_crop(jpegs, device="cpu", output_type=types.RGB,
                                               random_area=[0.08, 1.0], random_aspect_ratio=[3 / 4, 4 / 3])
        images = fn.resize(images, resize_x=size, resize_y=size)
        images = fn.crop_mirror_normalize(images, dtype=types.FLOAT, output_layout="CHW", mirror=fn.random.coin_flip(),
                                          mean=[0.485 * 255, 0.456 * 255, 0.406 * 255], std=[0.229 * 255, 0.224 * 255, 0.225 * 255])
        return images, labels

    p = pipe()
    p.build()
    iterator = DALIGenericIterator([p], ["images", "labels"], reader_name="reader", last_batch_policy=LastBatchPolicy.DROP, auto_reset=True)

    def one():
        for batch in iterator:
            yield batch[0]["images"]
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
    try:
        result["daliCPU224"] = dali(photos, 224, rounds)
    except Exception as error:  # not installed, or it cannot run here: say what it printed
        result["daliCPU224"] = f"{type(error).__name__}: {error}"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
