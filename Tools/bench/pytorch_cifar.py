"""The CIFAR-sized run of Tools/bench/cifar in PyTorch on the CPU: ResNet-20 (pytorch_resnet.py's) on
CIFAR-10 binary batches, batch 128, SGD with Nesterov momentum 0.9, lr 0.1 with a cosine decay per
step, weight decay 5e-4, pad-4 (black) random crop + horizontal flip, normalized by the training
set's per-channel mean and std. The data is held in memory and augmented on the training thread,
so the timed loop is the whole of training: augmentation, forward, backward, update.

    python3 pytorch_cifar.py CIFAR_DIR EPOCHS THREADS SEED

Prints one JSON object: trainSeconds, images, firstEpochLoss, torch."""
import glob, json, os, sys
import numpy as np
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_resnet import ResNet20, train_epochs

root, epochs, threads, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
records = np.concatenate([np.fromfile(f, dtype=np.uint8).reshape(-1, 1 + 3 * 32 * 32)
                          for f in sorted(glob.glob(os.path.join(root, "data_batch_*.bin")))])
train_y = records[:, 0].astype(np.int64)
train_x = records[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255
mean = train_x.mean(axis=(0, 2, 3), keepdims=True)
std = train_x.std(axis=(0, 2, 3), keepdims=True)
train_x = (train_x - mean) / std
pad = 4
# Padded with black, as torchvision's RandomCrop(32, padding=4) before Normalize and Pyramid's pad:4.
padded = np.broadcast_to((0 - mean) / std, (len(train_x), 3, 32 + 2 * pad, 32 + 2 * pad)).copy()
padded[:, :, pad:pad + 32, pad:pad + 32] = train_x


def crop_flip(ids):
    n, room = len(ids), 2 * pad + 1
    dx, dy = rng.integers(0, room, n), rng.integers(0, room, n)
    crops = np.stack([padded[i, :, y:y + 32, x:x + 32] for i, x, y in zip(ids, dx, dy)])
    flip = rng.random(n) < 0.5
    crops[flip] = crops[flip, :, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(crops))


seconds, first_loss, images = train_epochs(ResNet20(3), train_y, crop_flip, epochs, rng)
print(json.dumps({"trainSeconds": seconds, "images": images, "firstEpochLoss": first_loss, "torch": torch.__version__}))
