"""The data side of accuracy parity: how far Pyramid's views of a sample at a smaller
(or larger) size are from what a PyTorch pipeline makes of the same crop.

Pyramid renders every size of a sample from one crop box, each from the smallest stored level at
least that size (`pyramid export --views`, the loader's resampler). A PyTorch pipeline crops at
28 px and resizes that crop with antialiased bilinear (F.interpolate(antialias=True)). The 28 px
view of the same box is the same in both (a shift of the stored 28 px image, black outside), so
the reference for size s is the antialiased resize of Pyramid's own 28 px view.

    python3 Tools/parity/views.py PYRAMID CACHE [COUNT=200] [SEED=1] [SIZES=42,24,21,20,16,14,12]

For each size, with no augmentation (the whole image: stored level against resize) and with
pad:2+flip (a crop box at a whole-pixel offset of 28 px, which is a fraction of a pixel at the
smaller sizes): the mean and the largest absolute difference in grey levels (0–255) and the PSNR,
over COUNT samples. Prints a Markdown table."""
import io, math, subprocess, sys, tempfile, os
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

GAP = 2


def views(pyramid, cache, index, sizes, augment, seed, tmp):
    """One row of `pyramid export --views`: the views of sample `index`, largest size first."""
    out = os.path.join(tmp, "row.png")
    cmd = [pyramid, "export", cache, "--index", str(index), "--views", ",".join(map(str, sizes)), "--seed", str(seed), "-o", out]
    if augment:
        cmd += ["--augment", augment]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    sheet = np.asarray(Image.open(out).convert("L"), dtype=np.float32)
    result, x = {}, GAP
    for s in sorted(set(sizes), reverse=True):
        result[s] = sheet[GAP:GAP + s, x:x + s]
        x += s + GAP
    return result


def main():
    pyramid, cache = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    sizes = [int(s) for s in (sys.argv[5] if len(sys.argv) > 5 else "42,24,21,20,16,14,12").split(",")]
    print(f"{count} samples of {cache}, seed {seed}; differences in grey levels (0–255) between Pyramid's view and "
          f"the antialiased bilinear resize of its 28 px view")
    print()
    print("| size | augmentation | mean abs difference | largest | PSNR (dB) |")
    print("|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for augment in [None, "pad:2+flip"]:
            diffs = {s: [] for s in sizes}
            for i in range(count):
                v = views(pyramid, cache, i, [28] + sizes, augment or "none", seed, tmp)
                base = torch.from_numpy(v[28])[None, None]
                for s in sizes:
                    ref = F.interpolate(base, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
                    ref = ref.clamp(0, 255).round()[0, 0].numpy()  # as an 8-bit pipeline would store it
                    diffs[s].append(v[s] - ref)
            for s in sizes:
                d = np.stack(diffs[s])
                mse = float((d * d).mean())
                psnr = 10 * math.log10(255 ** 2 / mse) if mse > 0 else float("inf")
                print(f"| {s} | {augment or 'none (stored level)'} | {np.abs(d).mean():.2f} | {np.abs(d).max():.0f} | {psnr:.1f} |")


if __name__ == "__main__":
    main()
