"""Step parity with PyTorch: the same network, weights, batches and optimizer in PyTorch,
a few training steps, and what they produced, recorded as a small JSON fixture that
Tests/PyramidTrainTests/ParityTests.swift replays in Pyramid's trainer (CI needs no PyTorch).

The network is Pyramid's CIFAR ResNet (3x3 stem + BN + ReLU, BasicBlocks with 1x1-conv+BN
projection shortcuts, global average pooling, linear classifier), with one BatchNorm bank per
training size for RS-Nets and the ensemble weights alpha last. Weights and batches come from a
counter-based integer hash that Swift reproduces exactly, so no weights are shipped: the fixture
lists each tensor's name, size and the bound of its uniform values.

Cases (SGD, Nesterov momentum 0.9, lr 0.1, weight decay 5e-4 on every parameter):
  fixed    ResNet-8, batch 8 at 16 px, cross-entropy, 3 steps;
  mixsize  ResNet-8, steps at 12, 20 and 16 px with batches 10, 5 and 8, MixSize's gradient smoothing;
  rsnets   ResNet-8 with 2 BatchNorm banks, batch 8 at 16 and 12 px, MRED with full distillation, 3 steps;
  rsnets-resnet20  the RS-Nets recipe's network and sizes: ResNet-20, 5 banks, batch 32 at 28, 24, 20,
           16 and 12 px, full distillation, 1 step (the paths that depend on the batch and the plane:
           several column chunks per thread, or one kept per thread for the backward, per-branch
           caches). At this scale float32 itself is the limit: the gradients are sums of ~10^5
           cancelling terms and ReLUs switch on rounding, so PyTorch's own float32 step differs
           from its float64 step by up to 3.2% in some gradients (1.6% at batch 128). This case
           records the float64 step as the reference and PyTorch's float32 step beside it
           (`float32Steps`); Pyramid must be as close to float64 as PyTorch's float32 is.
After each step: the loss, and for every parameter tensor its gradient (as the optimizer saw it),
its new value, and every BatchNorm running statistic, each summarized by its norm, its dot product
with a fixed hash vector and 8 entries.

A pre-activation within float32 rounding of 0 makes the two sides' ReLU masks differ at that
element, and the gradients then differ by percents, legitimately (seen with batch 12 at 12 px: one
element of 27,648 at 4.8e-7 in one implementation and 0 in the other). The cases are chosen so that
none is that close; a new case that fails by percents should be checked for such a flip first.

    python3 Tools/parity/step.py [OUT=Tests/PyramidTrainTests/Fixtures/parity-steps.json]"""
import json, math, os, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

M32 = 0xFFFFFFFF


def uniform(stream, count, seed=0):
    """Counter-based hash in [0, 1): what Sources/…/ParityTests.swift computes, bit for bit."""
    i = np.arange(count, dtype=np.uint64)
    h = (i * np.uint64(0x9E3779B1) + np.uint64((stream * 0x85EBCA77 + seed * 0xC2B2AE3D) & M32)) & np.uint64(M32)
    h ^= h >> np.uint64(16); h = (h * np.uint64(0x7FEB352D)) & np.uint64(M32)
    h ^= h >> np.uint64(15); h = (h * np.uint64(0x846CA68B)) & np.uint64(M32)
    h ^= h >> np.uint64(16)
    return h.astype(np.float64) / 4294967296.0


def symmetric(stream, count, bound):
    return ((2 * uniform(stream, count) - 1) * bound).astype(np.float32)


class BN(nn.Module):
    """BatchNorm with one bank per training size (RS-Nets' private BatchNorm)."""
    def __init__(self, c, banks):
        super().__init__()
        self.banks = nn.ModuleList([nn.BatchNorm2d(c) for _ in range(banks)])
    def forward(self, x, bank):
        return self.banks[bank](x)


class Block(nn.Module):
    def __init__(self, cin, cout, stride, banks):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); self.bn1 = BN(cout, banks)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); self.bn2 = BN(cout, banks)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Conv2d(cin, cout, 1, stride, bias=False); self.short_bn = BN(cout, banks)
    def forward(self, x, bank):
        y = F.relu(self.bn1(self.conv1(x), bank))
        y = self.bn2(self.conv2(y), bank)
        s = x if self.short is None else self.short_bn(self.short(x), bank)
        return F.relu(y + s)


class ResNet(nn.Module):
    def __init__(self, depth, channels, classes, banks, ensemble):
        super().__init__()
        n = (depth - 2) // 6
        self.stem = nn.Conv2d(channels, 16, 3, 1, 1, bias=False); self.stem_bn = BN(16, banks)
        blocks, cin = [], 16
        for stage, width in enumerate([16, 32, 64]):
            for b in range(n):
                blocks.append(Block(cin, width, 2 if stage > 0 and b == 0 else 1, banks)); cin = width
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(64, classes)
        self.alpha = nn.Parameter(torch.ones(ensemble)) if ensemble else None
    def forward(self, x, bank=0):
        y = F.relu(self.stem_bn(self.stem(x), bank))
        for b in self.blocks:
            y = b(y, bank)
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))


def bound(name, p):
    if name.endswith("alpha"): return 0.5
    if p.dim() == 4: return math.sqrt(6 / (p.shape[1] * p.shape[2] * p.shape[3]))
    if p.dim() == 2: return 1 / math.sqrt(p.shape[1])
    if ".banks." in name and name.endswith("weight"): return 0.2   # gamma: 1 ± 0.2
    return 0.1                                                      # beta, bias


def ordered(model):
    """Parameters in Pyramid's order: PyTorch lists the root module's own parameter (alpha) first,
    Pyramid's store adds it last."""
    named = list(model.named_parameters())
    return [(n, p) for n, p in named if n != "alpha"] + [(n, p) for n, p in named if n == "alpha"]


def initialize(model):
    tensors = []
    with torch.no_grad():
        for t, (name, p) in enumerate(ordered(model)):
            b = bound(name, p)
            v = symmetric(1000 + t, p.numel(), b)
            gamma = ".banks." in name and name.endswith("weight")
            if gamma: v = (v + np.float32(1)).astype(np.float32)
            p.copy_(torch.from_numpy(v.reshape(p.shape)))
            tensors.append({"name": name, "count": p.numel(), "bound": b, "offset": 1.0 if gamma else 0.0})
    return tensors


def summary(t, stream):
    v = t.detach().double().flatten().numpy()
    n = v.size
    r = 2 * uniform(stream, n) - 1
    picks = [k * (n - 1) // 7 for k in range(8)]  # 8 entries, evenly spaced (repeats when n < 8)
    return {"norm": float(np.sqrt((v * v).sum())), "dot": float((v * r).sum()), "values": [float(v[i]) for i in picks]}


def batch(step, branch, n, c, s):
    x = symmetric(10000 + 10 * step + branch, n * c * s * s, 1.0).reshape(n, c, s, s)
    y = np.floor(uniform(20000 + step, n) * 10).astype(np.int64)
    return torch.from_numpy(x).to(torch.get_default_dtype()), torch.from_numpy(y)


def kl(p_teacher, z_student):
    return F.kl_div(F.log_softmax(z_student, 1), p_teacher, reduction="batchmean")


def mred_loss(logits, alpha, y):
    """RS-Nets' loss with full distillation: the sum of the branches' cross-entropies, the
    ensemble's (its branch logits detached, so only alpha learns from it), and 2/(S+1) times the
    KL terms from the ensemble and from every larger size, every teacher detached, T = 1."""
    cls = sum(F.cross_entropy(z, y) for z in logits)
    w = torch.softmax(alpha, 0)
    z0 = sum(w[b] * logits[b].detach() for b in range(len(logits)))
    ens = F.cross_entropy(z0, y)
    p0 = torch.softmax(z0, 1).detach()
    kd = sum(kl(p0, z) for z in logits)
    kd = kd + sum(kl(torch.softmax(logits[t], 1).detach(), logits[s]) for s in range(len(logits)) for t in range(s))
    return cls + ens + 2 / (len(logits) + 1) * kd


def smooth_gradients(params, running_norm):
    """MixSize's gradient smoothing (GradSmooth, momentum 0.9): from the second step on, the
    gradient is rescaled so that its norm is the running mean of the norms. Returns the new
    running norm (pass None at the first step of a phase)."""
    norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in params))
    if running_norm is None:
        return norm
    running_norm = 0.9 * running_norm + 0.1 * norm
    scale = running_norm / (norm + 1e-6)
    for p in params:
        p.grad.mul_(scale)
    return running_norm


def run(case):
    torch.manual_seed(0)
    parallel = case["kind"] == "rsnets"
    sizes = case["sizes"]
    model = ResNet(case["depth"], 1, 10, len(sizes) if parallel else 1, len(sizes) if parallel else 0)
    tensors = initialize(model)
    params = [p for _, p in ordered(model)]
    opt = torch.optim.SGD(params, lr=case["lr"], momentum=0.9, nesterov=True, weight_decay=5e-4)
    running_norm = None
    steps = []
    for k in range(case["steps"]):
        model.train()
        opt.zero_grad(set_to_none=False)
        n = case["batches"][k]
        if parallel:
            logits = []
            for b, s in enumerate(sizes):
                x, y = batch(k, b, n, 1, s)
                logits.append(model(x, b))
            loss = mred_loss(logits, model.alpha, y)
        else:
            x, y = batch(k, 0, n, 1, sizes[k])
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        if case.get("smoothing"):
            running_norm = smooth_gradients(params, running_norm)
        grads = [summary(p.grad, 30000 + t) for t, p in enumerate(params)]
        opt.step()
        values = [summary(p, 40000 + t) for t, p in enumerate(params)]
        state = []
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                state.append(summary(m.running_mean, 50000 + len(state)))
                state.append(summary(m.running_var, 50000 + len(state)))
        steps.append({"loss": float(loss.detach()), "grads": grads, "values": values, "state": state})
    return {"case": case, "tensors": tensors, "steps": steps}


def record(case):
    """A case's fixture entry: its float32 run, or with "reference": "float64" the float64 run
    (the reference) with the float32 run's steps beside it."""
    if case.get("reference") != "float64":
        return run(case)
    single = run(case)
    torch.set_default_dtype(torch.float64)
    try:
        double = run(case)
    finally:
        torch.set_default_dtype(torch.float32)
    double["float32Steps"] = single["steps"]
    return double


CASES = [
    {"name": "fixed", "kind": "fixed", "depth": 8, "sizes": [16, 16, 16], "batches": [8, 8, 8], "steps": 3, "lr": 0.1},
    {"name": "mixsize", "kind": "mixsize", "depth": 8, "sizes": [12, 20, 16], "batches": [10, 5, 8], "steps": 3, "lr": 0.1, "smoothing": True},
    {"name": "rsnets", "kind": "rsnets", "depth": 8, "sizes": [16, 12], "batches": [8, 8, 8], "steps": 3, "lr": 0.1},
    {"name": "rsnets-resnet20", "kind": "rsnets", "depth": 20, "sizes": [28, 24, 20, 16, 12], "batches": [32], "steps": 1, "lr": 0.1,
     "reference": "float64"},
]

if __name__ == "__main__":
    torch.set_num_threads(1)
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../Tests/PyramidTrainTests/Fixtures/parity-steps.json")
    result = {"torch": torch.__version__, "generator": "Tools/parity/step.py", "cases": [record(c) for c in CASES]}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=None, separators=(",", ":"))
    print(f"wrote {out}: {', '.join(c['case']['name'] for c in result['cases'])}; losses " +
          "; ".join(" ".join(f"{s['loss']:.6f}" for s in c["steps"]) for c in result["cases"]))
