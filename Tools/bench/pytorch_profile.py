"""Where a PyTorch training step of ResNet-20 goes, grouped as `pyramid bench train --profile`
groups Pyramid's: 3x3 convolutions by output plane, 1x1 shortcuts, BatchNorm with the ReLUs and
residual sums, and everything else (pooling, classifier, loss, SGD, autograd). torch.profiler on
the CPU, the model of pytorch_resnet.py, random data, the same batch and thread count.

    python3 pytorch_profile.py THREADS BATCH STEPS SIZExCHANNELS...

Prints one JSON object: per input, imagesPerSecond (steps without the profiler, median) and
layers: [{layer, forwardSeconds, backwardSeconds}] per step."""
import json, os, sys, time
import torch
from torch.profiler import profile, ProfilerActivity
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_resnet import training_step, median_rate

NORMALIZATION = "BatchNorm, ReLU, residual sums"
REMAINDER = "everything else (pooling, classifier, loss, SGD, input)"


def conv_row(shapes):
    """Row of a convolution from its input and weight shapes: (N, Cin, H, W), (Cout, Cin, k, k)."""
    (_, cin, h, w), (cout, _, k, _) = shapes[0], shapes[1]
    # ResNet-20: 1x1 shortcuts and the first 3x3 of a wider stage have stride 2 (the stem, 1 or 3
    # channels in, has stride 1).
    stride = 2 if k == 1 or (cin != cout and cin > 3) else 1
    if cin <= 3:
        return f"stem {k}x{k} convolution, {h}x{w} output"
    if k == 1:
        return "1x1 shortcut convolutions"
    return f"{k}x{k} convolutions, {(h + 2 - k) // stride + 1}x{(w + 2 - k) // stride + 1} output"


# The operators each row adds up, at the level where one call is one layer's work.
FORWARD = {"aten::convolution": "conv", "aten::batch_norm": NORMALIZATION, "aten::relu": NORMALIZATION,
           "aten::relu_": NORMALIZATION, "aten::add": NORMALIZATION, "aten::add_": NORMALIZATION}
BACKWARD = {"aten::convolution_backward": "conv", "aten::native_batch_norm_backward": NORMALIZATION,
            "aten::threshold_backward": NORMALIZATION}


def profile_size(size, channels, batch, steps, threads):
    step = training_step(size, channels, batch, threads)
    rate = median_rate(step, batch, steps)
    rows = {}
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        total = time.perf_counter() - start
    # Only top-level calls of the listed operators count (their children are inside them); the
    # residual sums' gradient adds are done by autograd and stay in the remainder.
    events = prof.events()
    for e in events:
        name = e.name
        backward = name in BACKWARD
        if not backward and name not in FORWARD:
            continue
        parent, nested = e.cpu_parent, False
        while parent is not None:
            if parent.name in FORWARD or parent.name in BACKWARD:
                nested = True
                break
            parent = parent.cpu_parent
        if nested:
            continue
        row = (BACKWARD if backward else FORWARD)[name]
        if row == "conv":
            shapes = e.input_shapes
            if backward:  # (grad_output, input, weight, …)
                shapes = shapes[1:3]
            row = conv_row(shapes)
        r = rows.setdefault(row, {"layer": row, "forwardSeconds": 0.0, "backwardSeconds": 0.0})
        r["backwardSeconds" if backward else "forwardSeconds"] += e.cpu_time_total / 1e6 / steps
    claimed = sum(r["forwardSeconds"] + r["backwardSeconds"] for r in rows.values())
    layers = list(rows.values()) + [{"layer": REMAINDER, "forwardSeconds": total / steps - claimed, "backwardSeconds": 0.0}]
    return {"imagesPerSecond": rate, "profiledStepSeconds": total / steps, "layers": layers}


if __name__ == "__main__":
    threads, batch, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    out = {"torch": torch.__version__, "threads": threads, "batch": batch}
    for spec in sys.argv[4:]:
        size, channels = (int(v) for v in spec.split("x"))
        out[spec] = profile_size(size, channels, batch, steps, threads)
    print(json.dumps(out))
