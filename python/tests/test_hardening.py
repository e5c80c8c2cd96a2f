"""Issue 32's Python cases: numbers ctypes would wrap, paths that would open another cache,
states that would resume the wrong stream, a Loader shared by two iterations, tickets misused."""

import ctypes
import os
import pickle
import subprocess
import threading

import pytest

import pyramid_loader as pl
from pyramid_loader import _native

from conftest import FASHION, run_tool


def test_integers_beyond_64_bits_raise_instead_of_wrapping(cache):
    loader = pl.Loader(cache, batch_size=64, epochs=2)
    for call in (lambda: loader.set_epoch(2**64 + 3), lambda: loader.plan(2**64), lambda: next(loader.batches(cursor=2**64 + 1))):
        with pytest.raises(ValueError, match="outside"):
            call()
    state = loader.state_dict()
    state["epoch"] = 2**64 + 3
    with pytest.raises(ValueError, match="epoch"):
        loader.load_state_dict(state)
    with pytest.raises(ValueError, match="seed"):
        pl.Loader(cache, seed=2**64 + 1)


def test_paths_with_nul_or_bytes_that_are_not_utf8_are_refused(cache, tmp_path):
    with pytest.raises(ValueError, match="NUL"):
        pl.Loader(cache + "\x00junk")
    odd = os.path.join(os.fsencode(tmp_path), b"nu\xff")
    os.symlink(cache, odd)
    with pytest.raises(ValueError, match="not valid UTF-8"):
        pl.Loader(odd)
    # The tool refuses the same argument instead of opening "nu\ufffd".
    import subprocess
    from conftest import tool
    result = subprocess.run([os.fsencode(tool()), b"inspect", odd], capture_output=True)
    assert result.returncode == 64 and b"not valid UTF-8" in result.stderr


def test_a_state_names_its_order_and_its_cache_build(cache, tmp_path):
    sharded = pl.Loader(cache, batch_size=32, order="shards:1", seed=3)
    it = sharded.batches()
    next(it)
    state = sharded.state_dict()
    it.close()
    assert state["settings"]["order"] == "shards:1"
    with pytest.raises(ValueError, match="order 'shards:1' -> 'global'"):
        pl.Loader(cache, batch_size=32, order="global", seed=3).load_state_dict(state)
    # Two caches of the same images, built in the same second: still two caches.
    twins = []
    for name in ("a", "b"):
        out = str(tmp_path / name)
        run_tool("build", str(FASHION), "--out", out, "--levels", "28,14", "--limit", "200", "--quiet")
        twins.append(out)
    first = pl.Loader(twins[0], batch_size=32)
    with pytest.raises(ValueError, match="cache"):
        pl.Loader(twins[1], batch_size=32).load_state_dict(first.state_dict())


def test_one_iteration_at_a_time_the_second_is_told_why(cache):
    loader = pl.Loader(cache, batch_size=16, workers=2)
    first = loader.batches()
    next(first)
    second = loader.batches()
    with pytest.raises(pl.PyramidError, match="being iterated already"):
        next(second)
    first.close()
    assert sum(1 for _ in loader.batches(epoch=0)) == len(loader)

    # Two threads: exactly one iterates, the other is refused; nothing ends silently short.
    results, errors = [], []

    def consume():
        try:
            results.append(sum(1 for _ in loader.batches(epoch=0)))
        except pl.PyramidError as e:
            errors.append(str(e))
    barrier_loader = [threading.Thread(target=consume) for _ in range(2)]
    for t in barrier_loader:
        t.start()
    for t in barrier_loader:
        t.join()
    assert all(r == len(loader) for r in results), results
    assert len(results) + len(errors) == 2 and len(results) >= 1


def test_messages_name_the_variable_or_argument(cache, monkeypatch):
    monkeypatch.setenv("RANK", "abc")
    with pytest.raises(ValueError, match="RANK='abc'"):
        pl.Loader(cache)
    monkeypatch.delenv("RANK")
    with pytest.raises(ValueError, match="device"):
        pl.Loader(cache, device="bogus")
    with pytest.raises(TypeError, match="device"):
        pl.Loader(cache, device=[5])
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(pl.Loader(cache, batch_size=16))


def test_tickets_redeemed_twice_or_invented_do_nothing(cache):
    loader = pl.Loader(cache, batch_size=16)
    ticket = _native.lib.pyramid_ticket(loader._handle.pointer, 987654)  # a batch that does not exist
    assert ticket
    _native.lib.pyramid_redeem_ticket(ticket)
    _native.lib.pyramid_redeem_ticket(ticket)  # twice: nothing happens
    _native.lib.pyramid_redeem_ticket(ctypes.c_void_p(0xDEADBEEF))  # never handed out
    assert sum(1 for _ in loader.batches()) == len(loader)


def test_the_c_header_compiles_and_serves_a_batch(cache, tmp_path):
    """pyramid.h and pyramid_binding.h as a C program uses them: the header compiles as C, the
    statuses have names, the version has a number, and a batch is opened, lent and released."""
    import shutil
    from pathlib import Path
    compiler = shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler on PATH")
    include = Path(__file__).resolve().parents[2] / "Sources" / "CPyramidABI" / "include"
    library = _native.library_path()
    program = tmp_path / "use.c"
    program.write_text(r'''
#include <stdio.h>
#include <string.h>
#include "pyramid.h"
#include "pyramid_binding.h"
int main(int argc, char **argv) {
    printf("%s %s %s %s %u\n", pyramid_status_name(PYRAMID_OK), pyramid_status_name(PYRAMID_END),
           pyramid_status_name(PYRAMID_INVALID), pyramid_status_name(42), pyramid_version_number());
    pyramid_loader *loader = NULL;
    char *error = NULL;
    if (pyramid_open(argv[1], "{\"batch_size\": 8, \"workers\": 1}", &loader, &error) != PYRAMID_OK) { printf("open: %s\n", error); return 1; }
    int32_t bad = pyramid_open(argv[1], "{\"batch_size\": -1}", &(pyramid_loader *){NULL}, &error);
    printf("%s %s\n", pyramid_status_name(bad), error ? "message" : "none");
    pyramid_string_free(error);
    pyramid_batch_info info;
    if (pyramid_start_epoch(loader, 0, 0, NULL) != PYRAMID_OK) return 2;
    int32_t status = pyramid_next(loader, -1, &info, NULL);
    printf("%s %lld %lld\n", pyramid_status_name(status), (long long)info.count, (long long)info.sizes[0]);
    if (pyramid_release(loader, info.id, NULL) != PYRAMID_OK) return 3;
    printf("%s\n", pyramid_status_name(pyramid_release(loader, info.id, NULL)));
    return pyramid_close(loader, NULL) == PYRAMID_OK ? 0 : 4;
}
''')
    binary = tmp_path / "use"
    subprocess.run([compiler, "-std=c11", "-Wall", "-Werror", "-I", str(include), str(program), "-o", str(binary),
                    "-L", str(library.parent), "-lPyramidC", f"-Wl,-rpath,{library.parent}"], check=True, capture_output=True, text=True)
    out = subprocess.run([str(binary), cache], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    version = [int(p) for p in pl.version().split(".")]
    assert lines[0] == f"PYRAMID_OK PYRAMID_END PYRAMID_INVALID unknown status {version[0] * 10000 + version[1] * 100 + version[2]}"
    assert lines[1] == "PYRAMID_INVALID message"
    assert lines[2] == "PYRAMID_OK 8 28"
    assert lines[3] == "PYRAMID_ERROR"
