"""The PyTorch side of Tools/parity/accuracy: one arm of the short recipe, trained the way a
PyTorch user would write it, following the schedule Pyramid planned for the same seed.

    python3 Tools/parity/accuracy.py IDX_DIR IMAGES PLAN_JSON ARM SEED THREADS SIZES [INIT=torch]

IDX_DIR: Fashion-MNIST's IDX files; the first IMAGES training images are used (Pyramid's --limit).
PLAN_JSON: `pyramid plan CACHE --schedule … --epochs E --seed SEED --steps --json`: the size(s) of
every step and the batch of every size, so TRD runs the same reduced epochs and MixSize the same
sequence of sizes and batches as Pyramid (which images go into a batch is this side's own draw).
ARM: fixed | trd | mixsize | rsnets. SIZES: test sizes, comma-separated. INIT: torch (PyTorch's
defaults: convolutions and the classifier uniform ±1/√fan-in) or pyramid (Pyramid's and
torchvision's ResNet init: convolutions He-normal with fan-out, N(0, 2/(k²·Cout)); the classifier
N(0, 0.01²) with zero bias), to tell what the initialization alone is worth.

Recipe (Pyramid's flags in Tools/parity/accuracy): ResNet-20 with 1x1-conv+BN shortcuts and
PyTorch's default initialization, SGD Nesterov momentum 0.9, lr 0.1 cosine per step, weight decay
5e-4 on every parameter, batch 128 (MixSize B+: the plan's batch per size). Data: normalized by the
training images' mean and std; pad 2 with black, random 28 px crop, horizontal flip — at 28 px, as
torchvision's RandomCrop(28, padding=2) would — then the crop is resized to each step size with
antialiased bilinear (F.interpolate(antialias=True); upsampling for sizes above 28). RS-Nets:
one BatchNorm bank per size, the same crop and flip at every size, MRED with full distillation
(step.py's loss), α starting at ones. MixSize: gradient smoothing (momentum 0.9) and the last γ
of every residual block starting at 0, as its reference code does. Test: the 10,000 test images
resized from 28 px the same way; RS-Nets with the bank of each trained size.

Prints one JSON object: arm, seed, trainSeconds, firstEpochLoss, top1 per size, torch. With
PARITY_STEP_LOSSES=FILE in the environment, also writes every step's loss to FILE, one per line
(to compare a run's first steps with Pyramid's progress line)."""
import json, math, os, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from step import ResNet, mred_loss, smooth_gradients
from pytorch_resnet import idx, pad_crop_flip


def resize(x, size):
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def main():
    root, images, plan_path, arm, seed, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    test_sizes = [int(s) for s in sys.argv[7].split(",")]
    init = sys.argv[8] if len(sys.argv) > 8 else "torch"
    plan = json.load(open(plan_path))
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_x = idx(os.path.join(root, "train-images-idx3-ubyte.gz"))[:images].astype(np.float32) / 255
    train_y = idx(os.path.join(root, "train-labels-idx1-ubyte.gz"))[:images].astype(np.int64)
    test_x = idx(os.path.join(root, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255
    test_y = idx(os.path.join(root, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    mean, std = float(train_x.mean()), float(train_x.std())
    black = (0 - mean) / std
    train_x = (train_x - mean) / std
    test_x = (test_x - mean) / std
    padded = np.pad(train_x, ((0, 0), (2, 2), (2, 2)), constant_values=black)

    parallel = arm == "rsnets"
    bank_sizes = sorted(plan["epochs"][0].get("parallelSizes", [28]), reverse=True) if parallel else [28]
    model = ResNet(20, 1, 10, len(bank_sizes) if parallel else 1, len(bank_sizes) if parallel else 0)
    if init == "pyramid":
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.zeros_(m.bias)
    elif init != "torch":
        raise SystemExit(f"accuracy.py: INIT is torch or pyramid, not {init}")
    if arm == "mixsize":  # MixSize's reference code starts the last BatchNorm γ of every block at 0
        with torch.no_grad():
            for block in model.blocks:
                for bn in block.bn2.banks:
                    bn.weight.zero_()
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    total = plan["steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    smoothing = arm == "mixsize"
    running_norm = None
    first_loss = None
    step_log = open(os.environ["PARITY_STEP_LOSSES"], "w", buffering=1) if os.environ.get("PARITY_STEP_LOSSES") else None
    start = time.perf_counter()
    for epoch in plan["epochs"]:
        model.train()
        batch_of = {s["size"]: s["batch"] for s in epoch["sizes"]}
        order = rng.permutation(images)
        cursor = 0
        losses = []
        for sizes in epoch["stepSizes"]:
            n = batch_of[sizes[0]]
            ids = order[cursor:cursor + n]
            cursor += n
            x28 = pad_crop_flip(padded, ids, rng)
            y = torch.from_numpy(train_y[ids])
            opt.zero_grad(set_to_none=False)
            if parallel:
                loss = mred_loss([model(resize(x28, s), b) for b, s in enumerate(bank_sizes)], model.alpha, y)
            else:
                loss = F.cross_entropy(model(resize(x28, sizes[0])), y)
            loss.backward()
            if smoothing:
                running_norm = smooth_gradients(params, running_norm)
            opt.step()
            sched.step()
            losses.append(loss.item())
            if step_log:
                step_log.write(f"{losses[-1]}\n")
        if first_loss is None:
            first_loss = sum(losses) / len(losses)
    seconds = time.perf_counter() - start

    model.eval()
    top1 = {}
    with torch.no_grad():
        for size in test_sizes:
            bank = bank_sizes.index(size) if parallel else 0
            correct = 0
            for s in range(0, len(test_x), 500):
                x = resize(torch.from_numpy(test_x[s:s + 500]).unsqueeze(1), size)
                correct += int((model(x, bank).argmax(1).numpy() == test_y[s:s + 500]).sum())
            top1[str(size)] = correct / len(test_x)
    out = {"arm": arm, "seed": seed, "init": init, "trainSeconds": seconds, "firstEpochLoss": first_loss, "top1": top1,
           "torch": torch.__version__}
    if parallel:
        out["alpha"] = torch.softmax(model.alpha, 0).tolist()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
