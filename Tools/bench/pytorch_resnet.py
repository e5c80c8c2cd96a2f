"""ResNet-20 training throughput in PyTorch on the CPU, the same model, batch and thread count as
`pyramid bench train` (CIFAR ResNet with 1x1-conv+BN shortcuts, BatchNorm, global average pooling,
SGD with momentum). Prints one JSON object: images/s per size. The model, the training step and
the IDX reader are shared with pytorch_recipe.py, pytorch_profile.py and Tools/parity."""
import gzip, json, os, statistics, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# The model is the parity scripts' ResNet (Tools/parity/step.py), with one BatchNorm bank.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from step import ResNet  # noqa: E402


def ResNet20(channels, classes=10):
    """CIFAR ResNet-20: 3x3 stem of 16 channels, three stages of 16/32/64, 1x1-conv+BN shortcuts."""
    return ResNet(20, channels, classes, banks=1, ensemble=0)


def idx(path):
    """An IDX file (MNIST's format, gzipped) as a numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def pad_crop_flip(padded, ids, rng, size=28):
    """A batch of torchvision's RandomCrop(size, padding=P) + RandomHorizontalFlip from images
    already padded by P: `(N, 1, size, size)` floats."""
    n, room = len(ids), padded.shape[1] - size + 1
    dx, dy = rng.integers(0, room, n), rng.integers(0, room, n)
    crops = np.stack([padded[i, y:y + size, x:x + size] for i, x, y in zip(ids, dx, dy)])
    flip = rng.random(n) < 0.5
    crops[flip] = crops[flip, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(crops)).unsqueeze(1)


def train_epochs(model, labels, images, epochs, rng, batch=128):
    """The recipes' training loop (Tools/bench/recipe and cifar): SGD with Nesterov momentum 0.9,
    lr 0.1 with a cosine decay per step, weight decay 5e-4 on every parameter, EPOCHS epochs of
    shuffled batches; `images(ids)` returns the augmented batch. Returns the seconds taken, the
    first epoch's mean loss and the number of images trained on."""
    import math
    steps_per_epoch = len(labels) // batch
    total = steps_per_epoch * epochs
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    first_loss = None
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(labels))
        losses = []
        for s in range(steps_per_epoch):
            ids = order[s * batch:(s + 1) * batch]
            x, y = images(ids), torch.from_numpy(labels[ids])
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        if epoch == 0:
            first_loss = sum(losses) / len(losses)
    return time.perf_counter() - start, first_loss, total * batch


def training_step(size, channels, batch, threads):
    """One full training step (forward, cross-entropy, backward, SGD) of ResNet-20 on a fixed random
    batch, warmed up: what `pyramid bench train` times."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = ResNet20(channels)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, channels, size, size)
    y = torch.randint(0, 10, (batch,))
    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    for _ in range(2):
        step()
    return step


def median_rate(step, batch, steps):
    """Images/s of the median of `steps` timed steps, as `pyramid bench train`."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def bench(size, channels, batch, steps, threads):
    return median_rate(training_step(size, channels, batch, threads), batch, steps)


if __name__ == "__main__":
    threads, batch, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    out = {"torch": torch.__version__, "threads": threads, "batch": batch}
    for spec in sys.argv[4:]:
        size, channels = (int(v) for v in spec.split("x"))
        out[spec] = bench(size, channels, batch, steps, threads)
    print(json.dumps(out))
