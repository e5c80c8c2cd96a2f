"""The 7-epoch Fashion-MNIST recipe of Tools/bench/recipe, in PyTorch on the CPU: ResNet-20 (the model
of pytorch_resnet.py), batch 128, SGD with Nesterov momentum 0.9, lr 0.1 with a cosine decay per step,
weight decay 5e-4 on every parameter, pad-2 (black) random crop + horizontal flip, normalized by the training
set's mean and std. The data is held in memory and augmented on the training thread, so the timed
loop is the whole of training: augmentation, forward, backward, update.

    python3 pytorch_recipe.py IDX_DIR EPOCHS THREADS SEED

Prints one JSON object: trainSeconds, top1 (on the 10,000 test images), firstEpochLoss, torch."""
import json, os, sys
import numpy as np
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_resnet import ResNet20, idx, pad_crop_flip, train_epochs


root, epochs, threads, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
train_x = idx(os.path.join(root, "train-images-idx3-ubyte.gz")).astype(np.float32) / 255
train_y = idx(os.path.join(root, "train-labels-idx1-ubyte.gz")).astype(np.int64)
test_x = idx(os.path.join(root, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255
test_y = idx(os.path.join(root, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
mean, std = float(train_x.mean()), float(train_x.std())
train_x = (train_x - mean) / std
test_x = (test_x - mean) / std
# Padded with black, as torchvision's RandomCrop(28, padding=2) pads the image before ToTensor and
# Normalize, and as Pyramid's pad:2 does: black is (0 - mean) / std after normalization.
padded = np.pad(train_x, ((0, 0), (2, 2), (2, 2)), constant_values=(0 - mean) / std)

model = ResNet20(1)
seconds, first_loss, _ = train_epochs(model, train_y, lambda ids: pad_crop_flip(padded, ids, rng), epochs, rng)
model.eval()
correct = 0
with torch.no_grad():
    for s in range(0, len(test_x), 500):
        x = torch.from_numpy(test_x[s:s + 500]).unsqueeze(1)
        correct += int((model(x).argmax(1).numpy() == test_y[s:s + 500]).sum())
print(json.dumps({"trainSeconds": seconds, "top1": correct / len(test_x), "firstEpochLoss": first_loss, "torch": torch.__version__}))
