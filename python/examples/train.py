"""Train a ResNet from a Pyramid cache with a resolution schedule: fixed, TRD, MixSize or RS-Nets.

    python python/examples/train.py CACHE --schedule trd:224,128,p=0.5 --epochs 90 --batch 64
    python python/examples/train.py CACHE --schedule parallel:28,20,14 --epochs 5 --model resnet20
    torchrun --nproc-per-node 2 python/examples/train.py CACHE --schedule mixsize:128,160,224@0.3,0.3,0.4

Models: torchvision's resnet18/resnet50 where torchvision imports, else (and for small images) a
CIFAR-style ResNet-20 in plain torch. Under torchrun every process reads its rank's share of every
step (the Loader takes the rank from torch.distributed) and DistributedDataParallel averages the
gradients; `--batch` is per process. A parallel (RS-Nets) schedule serves every sample at all its
sizes: the model keeps a BatchNorm per size, each size's logits learn from the labels, and the
smaller sizes also from the ensemble of all sizes (a KL term, as RS-Nets' distillation). Uses CUDA
when there is a device, the CPU otherwise. `--steps N` stops after N steps (a smoke test).
"""

import argparse
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import pyramid_loader as pl


class SwitchableBatchNorm(nn.Module):
    """One BatchNorm per training size (RS-Nets' private BatchNorm); `index` selects it."""

    def __init__(self, channels: int, banks: int):
        super().__init__()
        self.banks = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(banks))
        self.index = 0

    def forward(self, x):
        return self.banks[self.index](x)


class Block(nn.Module):
    def __init__(self, cin, cout, stride, banks):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), SwitchableBatchNorm(cout, banks)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), SwitchableBatchNorm(cout, banks)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Conv2d(cin, cout, 1, stride, bias=False)
            self.short_bn = SwitchableBatchNorm(cout, banks)

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(y + (x if self.short is None else self.short_bn(self.short(x))))


class ResNet20(nn.Module):
    """A CIFAR-style ResNet-20 (16/32/64 channels) for any input size, with `banks` BatchNorms per layer."""

    def __init__(self, channels, classes, banks=1):
        super().__init__()
        self.stem, self.stem_bn = nn.Conv2d(channels, 16, 3, 1, 1, bias=False), SwitchableBatchNorm(16, banks)
        blocks, cin = [], 16
        for stage, width in enumerate([16, 32, 64]):
            for b in range(3):
                blocks.append(Block(cin, width, 2 if stage > 0 and b == 0 else 1, banks))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def select(self, bank: int):
        for m in self.modules():
            if isinstance(m, SwitchableBatchNorm):
                m.index = bank

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem(x)))
        return self.fc(F.adaptive_avg_pool2d(self.blocks(x), 1).flatten(1))


def make_model(name, channels, classes, banks):
    if name == "resnet20":
        return ResNet20(channels, classes, banks)
    if banks > 1:
        raise SystemExit("a parallel schedule needs a model with a BatchNorm per size: use --model resnet20")
    try:
        import torchvision
    except Exception as e:  # torchvision may not import beside a CPU torch wheel
        raise SystemExit(f"--model {name} needs torchvision ({e}); use --model resnet20")
    model = getattr(torchvision.models, name)(num_classes=classes)
    if channels != 3:
        model.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cache")
    parser.add_argument("--schedule", default=None, help="default: fixed at the cache's largest level")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128, help="images per process per step")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--model", default="resnet20", help="resnet20, or torchvision's resnet18, resnet50, …")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = torch.distributed.get_rank() if distributed else 0
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}") if torch.cuda.is_available() else torch.device("cpu")
    torch.manual_seed(args.seed)

    loader = pl.Loader(args.cache, schedule=args.schedule, batch_size=args.batch, epochs=args.epochs, seed=args.seed,
                       workers=args.workers, device=device if device.type == "cuda" else None)
    sizes = loader.configuration["sizes"]
    parallel = loader.configuration["parallel"]
    model = make_model(args.model, loader.manifest["channels"], len(loader.manifest["classes"]), len(sizes) if parallel else 1)
    model = model.to(device, memory_format=torch.channels_last)
    trained = nn.parallel.DistributedDataParallel(model) if distributed else model
    steps_per_epoch = max(1, sum(len(e) for e in loader.plan()) // args.epochs)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4, nesterov=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)

    step = 0
    for epoch in range(args.epochs):
        loader.set_epoch(epoch)
        started, seen, loss_sum, batches = time.time(), 0, 0.0, 0
        for images, labels in loader:
            labels = labels.to(device, non_blocking=True)
            if parallel:
                # RS-Nets: every size through its own BatchNorm bank; the ensemble teaches the smaller sizes.
                logits = []
                for bank, size in enumerate(sizes):
                    model.select(bank)
                    logits.append(trained(images[size].to(device, non_blocking=True)))
                ensemble = torch.stack(logits).mean(0).detach()
                loss = sum(F.cross_entropy(z, labels) for z in logits)
                loss = loss + sum(F.kl_div(F.log_softmax(z, 1), F.softmax(ensemble, 1), reduction="batchmean") for z in logits[1:])
            else:
                loss = F.cross_entropy(trained(images.to(device, non_blocking=True)), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            seen += labels.numel()
            loss_sum += loss.item()
            batches += 1
            step += 1
            if args.steps is not None and step >= args.steps:
                break
        if rank == 0:
            print(f"epoch {epoch}: loss {loss_sum / max(1, batches):.4f}  {seen / (time.time() - started):.0f} images/s "
                  f"({batches} steps, schedule {loader.configuration['schedule']})", flush=True)
        if args.steps is not None and step >= args.steps:
            break
    if distributed:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
