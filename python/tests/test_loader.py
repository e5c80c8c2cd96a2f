"""The Python loader against the Swift loader and the tool, batch for batch."""

import ctypes
import gc
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

import pyramid_loader as pl
from pyramid_loader import _native

from conftest import run_tool

SCHEDULES = [
    ("fixed:28", 1, 0),
    ("trd:28,14,p=0.5", 4, 1),
    ("mixsize:14,20,28@0.3,0.3,0.4,mode=B+", 3, 2),
    ("parallel:28,20,14", 1, 0),
]


def view_digest(tensor: torch.Tensor) -> str:
    """XXH3 of a view's bytes as the loader stored them (float32 NCHW or uint8 NHWC)."""
    t = tensor.permute(0, 2, 3, 1) if tensor.dtype == torch.uint8 else tensor
    assert t.is_contiguous()
    return f"{_native.digest(t.data_ptr(), t.numel() * t.element_size()):016x}"


def labels_digest(labels: torch.Tensor) -> str:
    a = labels.numpy().astype(np.int32)
    return f"{_native.digest(a.ctypes.data, a.nbytes):016x}"


def python_batches(loader: pl.Loader, epoch: int, limit: int = 10**9):
    out = []
    for b in loader.batches(epoch):
        views = b.images if isinstance(b.images, dict) else {b.size: b.images}
        out.append({"step": b.step, "sizes": b.sizes, "indices": b.indices.tolist(), "nextCursor": b.next_cursor,
                    "digests": [view_digest(views[s]) for s in b.sizes], "labelsDigest": labels_digest(b.labels)})
        if len(out) == limit:
            break
    return out


def swift_batches(cache, schedule, epochs, epoch, batch, seed, output="float32", rank=0, world=1, order="global"):
    lines = run_tool("batches", cache, "--schedule", schedule, "--epochs", str(epochs), "--epoch", str(epoch), "--batch", str(batch * world),
                     "--seed", str(seed), "--output", output, "--rank", str(rank), "--world-size", str(world), "--shuffle", order,
                     "--json").splitlines()
    return [{k: v for k, v in json.loads(line).items() if k in ("step", "sizes", "indices", "nextCursor", "digests", "labelsDigest")}
            for line in lines]


def test_the_streaming_order_is_the_swift_loaders(cache):
    loader = pl.Loader(cache, schedule="fixed:28", batch_size=48, seed=3, order="shards:2", workers=2)
    mine = python_batches(loader, 0)
    assert mine == swift_batches(cache, "fixed:28", 1, 0, 48, 3, order="shards:2")


@pytest.mark.parametrize("schedule,epochs,epoch", SCHEDULES)
@pytest.mark.parametrize("output", ["float32", "uint8"])
def test_batches_are_byte_identical_to_the_swift_loader(cache, schedule, epochs, epoch, output):
    loader = pl.Loader(cache, schedule=schedule, batch_size=48, epochs=epochs, seed=7, output=output, workers=2)
    mine = python_batches(loader, epoch)
    theirs = swift_batches(cache, schedule, epochs, epoch, 48, 7, output)
    assert len(mine) == len(theirs) > 0
    for a, b in zip(mine, theirs):
        assert a == b, f"step {a['step']}"


@pytest.mark.parametrize("schedule,epochs,epoch", SCHEDULES)
def test_len_and_plan_equal_pyramid_plan(cache, schedule, epochs, epoch):
    loader = pl.Loader(cache, schedule=schedule, batch_size=48, epochs=epochs, seed=7)
    report = json.loads(run_tool("plan", cache, "--schedule", schedule, "--epochs", str(epochs), "--batch", "48", "--seed", "7",
                                 "--json", "--steps"))
    plan = loader.plan()
    assert len(plan) == epochs
    for e, expected in enumerate(report["epochs"]):
        assert [step["sizes"] for step in plan[e]] == expected["stepSizes"]
        loader.set_epoch(e)
        assert len(loader) == expected["steps"]


def test_two_ranks_split_every_step(cache):
    whole = pl.Loader(cache, schedule="trd:28,14,p=0.5", batch_size=64, epochs=3, seed=3, rank=0, world_size=1)
    ranks = [pl.Loader(cache, schedule="trd:28,14,p=0.5", batch_size=32, epochs=3, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for epoch in range(3):
        steps = [b.indices.tolist() for b in whole.batches(epoch)]
        per_rank = [[b.indices.tolist() for b in r.batches(epoch)] for r in ranks]
        assert len(per_rank[0]) == len(per_rank[1]) == len(steps)
        for k, step in enumerate(steps):
            a, b = per_rank[0][k], per_rank[1][k]
            assert not set(a) & set(b)
            assert sorted(a + b) == sorted(step)


def test_rank_comes_from_the_environment(cache, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    loader = pl.Loader(cache, batch_size=16)
    assert (loader.configuration["rank"], loader.configuration["world_size"]) == (1, 2)


def test_a_state_dict_resumes_mid_epoch_exactly(cache):
    def make():
        return pl.Loader(cache, schedule="mixsize:14,20,28@0.3,0.3,0.4", batch_size=32, epochs=2, seed=11)
    reference = make()
    reference.set_epoch(1)
    expected = [(b.step, view_digest(b.images)) for b in reference.batches()]
    first = make()
    first.set_epoch(1)
    it = first.batches()
    done = [next(it) for _ in range(5)]
    state = first.state_dict()
    it.close()
    assert state["epoch"] == 1 and state["cursor"] == done[-1].next_cursor
    resumed = make()
    resumed.load_state_dict(state)
    rest = [(b.step, view_digest(b.images)) for b in resumed.batches()]
    assert rest == expected[5:]
    other = pl.Loader(cache, schedule="mixsize:14,20,28@0.3,0.3,0.4", batch_size=32, epochs=2, seed=12)
    with pytest.raises(ValueError, match="seed 11 -> 12"):
        other.load_state_dict(state)


def test_kept_tensors_stay_unchanged_across_later_batches(cache):
    loader = pl.Loader(cache, schedule="fixed:20", batch_size=16, seed=1, prefetch=2, workers=2)
    it = loader.batches()
    kept = next(it)
    copy = kept.images.clone()
    for _ in range(20):
        next(it)
    assert torch.equal(kept.images, copy)
    it.close()


def test_a_released_buffer_is_reused(cache):
    loader = pl.Loader(cache, schedule="fixed:20", batch_size=16, seed=1, prefetch=2, workers=1)
    addresses = set()
    for b in loader.batches():
        addresses.add(b.images.data_ptr())
        del b
    assert len(addresses) <= 3


def test_a_corrupt_record_raises_and_the_interpreter_survives(damaged_cache):
    loader = pl.Loader(damaged_cache, schedule="fixed:14", batch_size=100, seed=0)
    with pytest.raises(pl.PyramidError, match=r"corrupt record: shard 0, index \d+, level 14"):
        for _ in loader.batches():
            pass
    substituting = pl.Loader(damaged_cache, schedule="fixed:14", batch_size=100, seed=0, corrupt_records="substitute")
    substituted = sum(b.substitutions for b in substituting.batches())
    assert substituted == 1
    assert substituting.substitutions()[0]["level"] == 14


BAD_ARGUMENTS = [
    (dict(batch_size="8"), TypeError), (dict(batch_size=1.5), TypeError), (dict(batch_size=True), TypeError),
    (dict(batch_size=0), ValueError), (dict(batch_size=-3), ValueError), (dict(batch_size=10**12), ValueError),
    (dict(batch_size=2**70), ValueError), (dict(epochs=0), ValueError), (dict(seed=-1), ValueError), (dict(seed=2**64), ValueError),
    (dict(seed="1"), TypeError), (dict(workers=0), ValueError), (dict(prefetch=0), ValueError), (dict(world_size=0), ValueError),
    (dict(rank=2, world_size=2), ValueError), (dict(rank=-1, world_size=2), ValueError), (dict(schedule="bogus"), ValueError),
    (dict(schedule="fixed:0"), ValueError), (dict(schedule="fixed:1000"), ValueError), (dict(schedule=28), TypeError),
    (dict(schedule="mixsize:14,28@0.5"), ValueError), (dict(augment="sideways"), ValueError), (dict(output="float64"), ValueError),
    (dict(corrupt_records="maybe"), ValueError), (dict(shuffle="yes"), TypeError), (dict(device="tpu"), (ValueError, RuntimeError)),
    (dict(schedule="parallel:" + ",".join(str(s) for s in range(10, 28))), ValueError),
    (dict(order="random"), ValueError), (dict(order="shards:0"), ValueError), (dict(order=4), TypeError),
]


@pytest.mark.parametrize("arguments,error", BAD_ARGUMENTS)
def test_bad_arguments_raise_never_abort(cache, arguments, error):
    with pytest.raises(error) as raised:
        pl.Loader(cache, **arguments)
    assert str(raised.value)


def test_fuzzed_configurations_raise_or_work(cache):
    seed = 20261203
    print(f"seed {seed}")
    rng = random.Random(seed)
    values = [None, 0, 1, -1, 7, 2**31, 2**63, 2**64, 1.5, "", "x", "fixed:28", "trd:28,14", "none", True, [], {}, "pad:-1",
              "mixsize:14,28@1,0", "parallel:28,28", "rrc:0.1-2", "fixed:-28"]
    keys = ["schedule", "batch_size", "epochs", "seed", "augment", "rank", "world_size", "workers", "prefetch", "output",
            "shuffle", "drop_last", "corrupt_records"]
    outcomes = {"ok": 0, "ValueError": 0, "TypeError": 0}
    for _ in range(150):
        arguments = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(1, 4))}
        arguments = {k: v for k, v in arguments.items() if v is not None or k in ("schedule", "augment", "rank", "world_size",
                                                                              "workers", "prefetch", "drop_last")}
        try:
            loader = pl.Loader(cache, **arguments)
            outcomes["ok"] += 1
            next(iter(loader.batches()), None)
        except (ValueError, TypeError) as e:
            outcomes[type(e).__name__] += 1
            assert str(e)
    assert outcomes["ValueError"] > 0 and outcomes["TypeError"] > 0


def test_a_forked_child_gets_an_error_not_a_hang(cache):
    loader = pl.Loader(cache, batch_size=16, workers=2)
    next(iter(loader.batches()))
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            signal.alarm(20)
            next(iter(loader.batches()))
            code = 1
        except pl.PyramidError as e:
            code = 0 if "forked" in str(e) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_ctrl_c_raises_keyboard_interrupt_and_stops_the_epoch(cache):
    """Ctrl-C at 30 random moments of an iteration: each one raises KeyboardInterrupt within
    seconds (none is dropped, e.g. inside a batch's finalization), and the loader still works."""
    loader = pl.Loader(cache, schedule="fixed:28", batch_size=8, workers=1, prefetch=1)
    main = threading.get_ident()
    rng = random.Random(7)
    seen = 0
    for trial in range(30):
        delay = rng.uniform(0.01, 0.15)
        timer = threading.Timer(delay, lambda: signal.pthread_kill(main, signal.SIGINT))
        started = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            # Bounded: a dropped interrupt fails the test instead of iterating for ever.
            while time.monotonic() - started < delay + 10:
                for _ in loader.batches():
                    seen += 1
                    time.sleep(0.002)
        timer.join()
        assert time.monotonic() - started < delay + 10, f"trial {trial}: the Ctrl-C was dropped"
    assert seen > 0
    # The loader still works: a new epoch starts from scratch.
    assert sum(1 for _ in loader.batches(0)) == len(loader)


def test_a_batch_is_released_in_native_code_when_its_last_tensor_dies(cache):
    loader = pl.Loader(cache, batch_size=8, workers=1)
    batch = next(iter(loader.batches()))
    images = batch.images
    del batch
    calls = []

    def profile(frame, event, arg):
        if event == "call" and "pyramid_loader" in frame.f_code.co_filename:
            calls.append(frame.f_code.co_qualname)
    gc.disable()  # no unrelated collection in between
    sys.setprofile(profile)
    try:
        del images  # the last view of the batch: it goes back to the loader here
    finally:
        sys.setprofile(None)
        gc.enable()
    assert calls == [], f"Python code ran while a batch was released (a Ctrl-C landing there would be dropped): {calls}"
    loader.close()


def test_an_owner_releases_its_batch_when_it_dies_and_only_then(cache):
    loader = pl.Loader(cache, batch_size=8, workers=1)
    pointer = loader._handle.pointer
    _native.call(_native.lib.pyramid_start_epoch, pointer, 0, 0)
    ids = []
    for _ in range(2):
        info = _native.BatchInfo()
        assert _native.call(_native.lib.pyramid_next, pointer, 10_000, ctypes.byref(info)) == _native.OK
        ids.append(info.id)
    kept = _native.owner(pointer, ids[0])
    dropped = _native.owner(pointer, ids[1])
    del dropped
    with pytest.raises(pl.PyramidError, match="not held"):
        _native.call(_native.lib.pyramid_release, pointer, ids[1])  # released by its owner already
    _native.call(_native.lib.pyramid_release, pointer, ids[0])  # still held while its owner lives
    del kept  # its release is refused now, silently
    _native.call(_native.lib.pyramid_stop_epoch, pointer)
    loader.close()


def test_loading_installs_no_signal_handlers(cache):
    code = ("import signal\n"
            "def caught():\n"
            "    return next(int(l.split()[1], 16) for l in open('/proc/self/status') if l.startswith('SigCgt'))\n"
            "import torch\n"
            "before = caught()\n"
            "import pyramid_loader as pl\n"
            f"b = next(iter(pl.Loader({cache!r}, batch_size=8)))\n"
            "after = caught()\n"
            "print([signal.Signals(i + 1).name for i in range(64) if (after & ~before) >> i & 1])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_library_needs_no_swift_runtime():
    library = _native.library_path()
    out = subprocess.run(["ldd", str(library)], capture_output=True, text=True, check=True).stdout
    assert "libswift" not in out and "not found" not in out, out


def test_it_trains_without_the_toolchain_on_any_path(cache, tmp_path):
    """The installed wheel, with PATH cut to /usr/bin:/bin and no LD_LIBRARY_PATH, from another
    directory: it imports, loads and trains (a few SGD steps that lower the loss)."""
    if os.environ.get("PYRAMID_LIBRARY"):
        pytest.skip("a development build (PYRAMID_LIBRARY), not the installed package")
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    code = (f"import torch, pyramid_loader as pl\n"
            f"loader = pl.Loader({cache!r}, schedule='fixed:14', batch_size=100, epochs=4, seed=1, augment='none')\n"
            "model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(196, 10))\n"
            "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "losses = []\n"
            "for epoch in range(4):\n"
            "    loader.set_epoch(epoch)\n"
            "    for images, labels in loader:\n"
            "        loss = torch.nn.functional.cross_entropy(model(images), labels)\n"
            "        opt.zero_grad(); loss.backward(); opt.step(); losses.append(loss.item())\n"
            "print(images.shape, losses[0], losses[-1])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    shape, first, last = out.stdout.rsplit(" ", 2)
    assert "torch.Size([100, 1, 14, 14])" in shape and float(last) < float(first), out.stdout


def test_the_installed_wheel_is_small_tagged_and_carries_no_tls_stack():
    """Issue 34: a manylinux wheel of at most 25 MB installed, with no TLS, crypto, LDAP or
    Kerberos library inside (libcurl is the system's, loaded for s3:// only)."""
    if os.environ.get("PYRAMID_LIBRARY"):
        pytest.skip("a development build (PYRAMID_LIBRARY), not the installed package")
    from importlib.metadata import distribution
    from pathlib import Path
    import re
    tags = distribution("pyramid-loader").read_text("WHEEL")
    assert re.search(r"^Tag: py3-none-manylinux_2_\d+_x86_64$", tags, re.M), tags
    package = Path(pl.__file__).parent
    size = sum(f.stat().st_size for f in package.rglob("*") if f.is_file())
    assert size <= 25 * 2**20, f"{size / 2**20:.1f} MiB installed"
    names = sorted(f.name for f in (package / "lib").iterdir())
    assert not [n for n in names if re.search(r"ssl|crypto|gnutls|krb5|ldap|curl|gssapi|nettle|sasl", n)], names
    assert "libPyramidC.so" in names


def test_float16_and_channels_last_uint8(cache):
    half = next(pl.Loader(cache, batch_size=4, output="float16", augment="none", shuffle=False).batches())
    full = next(pl.Loader(cache, batch_size=4, output="float32", augment="none", shuffle=False).batches())
    raw = next(pl.Loader(cache, batch_size=4, output="uint8", augment="none", shuffle=False).batches())
    assert half.images.dtype == torch.float16
    assert torch.allclose(half.images.float(), full.images, atol=2e-3)
    assert raw.images.shape == (4, 1, 28, 28) and raw.images.is_contiguous(memory_format=torch.channels_last)
    mean, std = pl.Loader(cache, batch_size=4).manifest["mean"][0], pl.Loader(cache, batch_size=4).manifest["std"][0]
    assert torch.allclose((raw.images.float() / 255 - mean) / std, full.images, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_batches_equal_the_cpu_ones(cache):
    gpu = next(pl.Loader(cache, batch_size=8, device="cuda:0", shuffle=False, augment="none").batches())
    cpu = next(pl.Loader(cache, batch_size=8, shuffle=False, augment="none").batches())
    assert gpu.images.device.type == "cuda"
    assert torch.allclose(gpu.images.cpu(), cpu.images, atol=1e-4)


@pytest.mark.parametrize("schedule", ["fixed:28", "trd:28,14,p=0.5", "mixsize:14,20,28@0.3,0.3,0.4", "parallel:28,20,14"])
def test_the_example_trains(cache, schedule):
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "train.py")
    out = subprocess.run([sys.executable, example, cache, "--schedule", schedule, "--epochs", "2", "--batch", "16", "--steps", "3"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "epoch 0: loss" in out.stdout and f"schedule {schedule.split('@')[0]}" in out.stdout


S3_ENDPOINT = os.environ.get("PYRAMID_TEST_S3_ENDPOINT")


@pytest.mark.skipif(not S3_ENDPOINT, reason="no S3 server: run ./Tools/test (it starts one)")
def test_an_s3_cache_streams_through_a_small_limit_with_several_workers(tmp_path, monkeypatch):
    """Two workers and four buffers in flight read steps out of step with each other; the local
    cache (under a third of the dataset) must serve them without evicting what a step in
    progress reads: every epoch ends, with the batches of the local copy."""
    from conftest import FASHION
    if not FASHION.exists():
        pytest.skip("Fashion-MNIST is not installed")
    local = tmp_path / "local"
    run_tool("build", str(FASHION), "--out", str(local), "--levels", "28,14", "--limit", "2400", "--shards", "24", "--quiet")
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ["PYRAMID_TEST_S3_ACCESS_KEY"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ["PYRAMID_TEST_S3_SECRET_KEY"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", S3_ENDPOINT)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    remote = f"s3://pyr-py-{random.randrange(1 << 30)}/small"
    run_tool("push", str(local), remote, "--create-bucket", "--quiet")
    # The bytes of the files a fixed:28 run reads: the 28 px level files (version 3), or whole shards (version 2).
    shard_bytes = sum(s["files"]["level-28.mdb"]["bytes"] if "files" in s else s["file"]["bytes"]
                      for s in json.load(open(local / "manifest.json"))["shards"])
    monkeypatch.setenv("PYRAMID_CACHE_DIR", str(tmp_path / "fetched"))
    monkeypatch.setenv("PYRAMID_CACHE_LIMIT", str(shard_bytes * 3 // 10))
    settings = dict(schedule="fixed:28", batch_size=48, seed=5, epochs=2, order="shards:2", workers=2, prefetch=4)
    expected = python_batches(pl.Loader(str(local), **settings), 1)
    loader = pl.Loader(remote, **settings)
    done = threading.Event()
    watchdog = threading.Timer(120, lambda: None if done.is_set() else os.kill(os.getpid(), signal.SIGINT))
    watchdog.start()
    try:
        python_batches(loader, 0)
        assert python_batches(loader, 1) == expected
    except KeyboardInterrupt:
        pytest.fail("the epochs did not end within 120 s (the fetcher evicted what a step in progress reads)")
    finally:
        done.set()
        watchdog.cancel()
