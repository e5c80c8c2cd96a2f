#!/usr/bin/env python3
"""PSNR of a lossy cache's levels against a lossless cache of the same source and levels.

    python3 Tools/bench/psnr.py LOSSLESS_CACHE LOSSY_CACHE [SAMPLES=500]

Reads both with docs/read_cache.py (checksums checked), over evenly spaced samples; a level's PSNR is
10·log10(255² / MSE) with the MSE over all its pixels and channels. Prints one JSON object:
{"224": dB, ...}.
"""
import json, os, sys
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs"))
import read_cache

lossless, lossy = sys.argv[1], sys.argv[2]
samples = int(sys.argv[3]) if len(sys.argv) > 3 else 500
ma, ea = read_cache.open_cache(lossless)
mb, eb = read_cache.open_cache(lossy)
assert ma["sampleCount"] == mb["sampleCount"] and [l["size"] for l in ma["levels"]] == [l["size"] for l in mb["levels"]]
n = ma["sampleCount"]
indices = sorted(set(i * n // min(samples, n) for i in range(min(samples, n))))
out = {}
for level in ma["levels"]:
    size = level["size"]
    se, count = 0.0, 0
    for i in indices:
        a, _ = read_cache.read(lossless, ma, ea, i, size)
        b, _ = read_cache.read(lossy, mb, eb, i, size)
        d = a.astype(np.float64) - b.astype(np.float64)
        se += float((d * d).sum()); count += d.size
    out[str(size)] = 10 * np.log10(255 ** 2 / (se / count))
print(json.dumps(out))
