"""Loading photos from S3-compatible storage into torch tensors: Pyramid's bridge against MosaicML
Streaming, one loader per process (each in its own virtual environment). Used by Tools/bench/remote.

    remote_load.py write-mds PHOTOS OUT SHARD_BYTES     MDS shards of PHOTOS (Streaming's venv)
    remote_load.py upload DIR BUCKET PREFIX             DIR's files to the S3 server (Streaming's venv)
    remote_load.py pyramid URL CACHE_DIR LIMIT STATS STEP_MS EPOCHS
    remote_load.py streaming URL CACHE_DIR LIMIT STATS STEP_MS EPOCHS [SHUFFLE_BLOCK]

Both loaders serve random-resized crops (scale 0.08-1, ratio 3/4-4/3) + flips at 224 px as float32
NCHW normalized tensors, batch 64, 2 workers, from a local cache limited to LIMIT bytes. Pyramid
reads its default photo cache (jpeg:90 levels 224..96, shard-aware order shards:4); Streaming
reads MDS shards holding the same photos as 224 px centre crops at JPEG quality 90 (what Pyramid's
224 level holds), shuffle py1e, decoded with PIL in its DataLoader workers (Tools/bench/pil_crop.py).

Every batch is followed by a modelled training step of STEP_MS (a sleep: the step of an
accelerator, which leaves the CPU to the loader). Prints one JSON object: the seconds from making
the loader to its first batch, and per epoch images/s, the share of the epoch spent waiting for a
batch, and the bytes the proxy served (its STATS file) during it.
"""

import io
import json
import os
import sys
import time

BATCH, WORKERS, SIZE = 64, 2, 224


def served(stats):
    try:
        with open(stats) as f:
            return json.load(f)["getBytes"]
    except FileNotFoundError:
        return 0


def measure(make_epochs, stats, step, epochs):
    """make_epochs() → a function epoch(e) returning an iterator of image tensors."""
    started = time.perf_counter()
    epoch_of = make_epochs()
    first = None
    rows = []
    for e in range(epochs):
        before, start, wait, images = served(stats), time.perf_counter(), 0.0, 0
        iterator = iter(epoch_of(e))
        while True:
            w = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                break
            wait += time.perf_counter() - w
            if first is None:
                first = time.perf_counter() - started
            images += batch.shape[0]
            if step:
                time.sleep(step)
        seconds = time.perf_counter() - start
        rows.append({"images": images, "seconds": seconds, "imagesPerSecond": images / seconds,
                     "waitShare": wait / seconds, "bytes": served(stats) - before})
    return {"firstBatchSeconds": first, "epochs": rows}


def pyramid(url, cache_dir, limit, stats, step, epochs):
    os.environ["PYRAMID_CACHE_DIR"], os.environ["PYRAMID_CACHE_LIMIT"] = cache_dir, str(limit)
    import pyramid_loader as pl

    def make():
        loader = pl.Loader(url, schedule=f"fixed:{SIZE}", augment="rrc+flip", batch_size=BATCH, workers=WORKERS, seed=1)
        return lambda e: (b.images for b in loader.batches(e))
    return measure(make, stats, step, epochs)


def streaming(url, cache_dir, limit, stats, step, epochs, block=None):
    import torch
    from PIL import Image
    from streaming import StreamingDataset
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pil_crop import random_resized_crop

    class Photos(StreamingDataset):
        def __getitem__(self, i):
            sample = super().__getitem__(i)
            return random_resized_crop(Image.open(io.BytesIO(sample["image"])), SIZE), sample["label"]

    def make():
        # shuffle_block_size: Streaming's default (262,144 samples) spans this whole dataset.
        data = Photos(remote=url, local=cache_dir, shuffle=True, shuffle_algo="py1e", shuffle_seed=1, batch_size=BATCH,
                      cache_limit=limit, shuffle_block_size=block)
        loader = torch.utils.data.DataLoader(data, batch_size=BATCH, num_workers=WORKERS)
        return lambda e: (images for images, _ in loader)
    return measure(make, stats, step, epochs)


def write_mds(photos, out, shard_bytes):
    from PIL import Image
    from streaming import MDSWriter
    classes = sorted(d for d in os.listdir(photos) if os.path.isdir(os.path.join(photos, d)))
    with MDSWriter(out=out, columns={"image": "bytes", "label": "int"}, size_limit=shard_bytes) as writer:
        for label, c in enumerate(classes):
            for name in sorted(os.listdir(os.path.join(photos, c))):
                image = Image.open(os.path.join(photos, c, name)).convert("RGB")
                scale = SIZE / min(image.size)
                w, h = max(SIZE, round(image.width * scale)), max(SIZE, round(image.height * scale))
                image = image.resize((w, h), Image.BICUBIC, reducing_gap=3.0)
                x, y = (w - SIZE) // 2, (h - SIZE) // 2
                buffer = io.BytesIO()
                image.crop((x, y, x + SIZE, y + SIZE)).save(buffer, format="JPEG", quality=90)
                writer.write({"image": buffer.getvalue(), "label": label})


def upload(directory, bucket, prefix):
    import boto3
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    for name in sorted(os.listdir(directory)):
        s3.upload_file(os.path.join(directory, name), bucket, f"{prefix}/{name}")


def main():
    mode, a = sys.argv[1], sys.argv[2:]
    if mode == "write-mds":
        write_mds(a[0], a[1], int(a[2]))
    elif mode == "upload":
        upload(a[0], a[1], a[2])
    elif mode == "pyramid":
        print(json.dumps(pyramid(a[0], a[1], int(a[2]), a[3], float(a[4]) / 1000, int(a[5]))))
    elif mode == "streaming":
        block = int(a[6]) if len(a) > 6 else None
        print(json.dumps(streaming(a[0], a[1], int(a[2]), a[3], float(a[4]) / 1000, int(a[5]), block)))
    else:
        sys.exit(f"remote_load.py: unknown mode {mode}")


if __name__ == "__main__":
    main()
