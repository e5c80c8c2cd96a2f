#!/usr/bin/env python3
"""Reads a Pyramid cache (format version 1, 2 or 3) with lmdb, zstandard, numpy, and from version 2
xxhash and Pillow (pip install lmdb zstandard numpy xxhash pillow). Version 3 keeps each level of a
shard in a file of its own (only the file of the level read is opened), its records in packs.

    python3 docs/read_cache.py CACHE [INDEX [LEVEL]]

Prints the manifest summary and the shape, label and mean of one sample, checking what
docs/cache-format.md says a reader should check.
"""
import base64, io, json, os, struct, sys
import lmdb, numpy as np, zstandard

def open_cache(path):
    manifest = json.load(open(os.path.join(path, "manifest.json")))
    if manifest["formatVersion"] not in (1, 2, 3):
        raise SystemExit(f"{path}: unsupported format version {manifest['formatVersion']}")
    return manifest, {}

def env(path, manifest, envs, shard, file):
    """The LMDB environment of one shard file, opened on first use: version 1/2 `data.mdb` (a
    directory environment holding every level), version 3 `meta.mdb` or `level-<size>.mdb`."""
    key = (shard, file if manifest["formatVersion"] >= 3 else "data.mdb")
    if key not in envs:
        directory = os.path.join(path, manifest["shards"][shard]["name"])
        if manifest["formatVersion"] >= 3:
            envs[key] = lmdb.open(os.path.join(directory, file), readonly=True, lock=False, max_dbs=4, subdir=False)
        else:
            envs[key] = lmdb.open(directory, readonly=True, lock=False, max_dbs=64, subdir=True)
    return envs[key]

def read(path, manifest, envs, index, size):
    version = manifest["formatVersion"]
    shard = max(k for k, s in enumerate(manifest["shards"]) if s["firstIndex"] <= index)
    level = next(l for l in manifest["levels"] if l["size"] == size)
    key = struct.pack(">Q", index)
    records = env(path, manifest, envs, shard, f"level-{size}.mdb")
    with records.begin() as txn:
        db = records.open_db(f"level-{size}".encode(), txn=txn, create=False)
        meta = records.open_db(b"meta", txn=txn, create=False) if version >= 3 else None
        if meta is not None and txn.get(b"packs", db=meta) is not None:
            # A pack: consecutive records in one value, keyed by the first one's index.
            cursor = txn.cursor(db=db)
            if not cursor.set_range(key):  # the first key >= index, or the pack before it
                cursor.last()
            elif cursor.key() != key:
                cursor.prev()
            first = struct.unpack(">Q", cursor.key())[0]
            pack = cursor.value()
            n = struct.unpack_from("<I", pack)[0]
            ends = (0,) + struct.unpack_from(f"<{n}I", pack, 4)
            j = index - first
            assert 0 <= j < n and 4 + 4 * n + ends[n] == len(pack), f"index {index} level {size}: damaged pack"
            record = bytes(pack[4 + 4 * n + ends[j]:4 + 4 * n + ends[j + 1]])
        else:
            record = bytes(txn.get(key, db=db))
    labels = env(path, manifest, envs, shard, "meta.mdb")
    with labels.begin() as txn:
        label = struct.unpack("<i", txn.get(key, db=labels.open_db(b"labels", txn=txn, create=False)))[0]
    if version >= 2:  # the last 8 bytes: XXH3-64 (seed 0) of everything before them, little-endian
        import xxhash
        record, stored = record[:-8], struct.unpack("<Q", record[-8:])[0]
        if xxhash.xxh3_64_intdigest(record) != stored:
            raise SystemExit(f"index {index} level {size}: checksum mismatch")
    rversion, codec, filt, channels, width, height = struct.unpack("<BBBBHH", record[:8])
    payload = record[8:]
    assert rversion == min(version, 2) and channels == manifest["channels"] and min(width, height) == level["storedShortSide"]
    if level.get("codec", "zstd") == "jpeg":
        from PIL import Image
        assert codec == 3 and filt == 0
        jpeg = Image.open(io.BytesIO(payload))
        assert jpeg.format == "JPEG" and jpeg.size == (width, height)
        image = np.asarray(jpeg.convert("L" if channels == 1 else "RGB")).reshape(height, width, channels)
        return image, label
    assert filt == {"none": 0, "sub": 1}[manifest["codec"]["filter"]]
    assert codec in (1, 2) and (codec == 2) == (level.get("dictionary") is not None)
    params = {}
    if codec == 2:
        params["dict_data"] = zstandard.ZstdCompressionDict(base64.b64decode(level["dictionary"]))
    pixels = zstandard.ZstdDecompressor(**params).decompress(payload, max_output_size=width * height * channels)
    assert len(pixels) == width * height * channels
    image = np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, channels).copy()
    if filt == 1:  # undo PNG "sub": running sum along each row, per channel, mod 256
        image = np.cumsum(image, axis=1, dtype=np.uint8)
    return image, label

if __name__ == "__main__":
    path = sys.argv[1]
    manifest, envs = open_cache(path)
    index = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    size = int(sys.argv[3]) if len(sys.argv) > 3 else manifest["levels"][0]["size"]
    codecs = [l.get("codec", "zstd") + (f":{l['quality']}" if "quality" in l else "") for l in manifest["levels"]]
    print(f"{manifest['sampleCount']} samples, levels {[l['size'] for l in manifest['levels']]} ({', '.join(codecs)}), classes {len(manifest['classes'])}")
    image, label = read(path, manifest, envs, index, size)
    print(f"sample {index} level {size}: shape {image.shape}, label {label} ({manifest['classes'][label]}), mean {image.mean():.2f}")
