"""Fixtures: the `pyramid` tool of this repository and small caches built with it."""

import faulthandler
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
FASHION = Path("/usr/share/datasets/fashion-mnist")
# A test that runs longer than this is hung: every thread's stack is printed and pytest exits
# (CI then fails with the place of the hang instead of at its own time limit).
HANG_SECONDS = 600


@pytest.fixture(autouse=True)
def no_hang():
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def tool() -> str:
    """The `pyramid` binary: PYRAMID_TOOL, else the repository's debug build."""
    path = os.environ.get("PYRAMID_TOOL") or str(REPOSITORY / ".build" / "debug" / "pyramid")
    if not Path(path).exists():
        pytest.skip(f"no pyramid tool at {path} (build it with swift build, or set PYRAMID_TOOL)")
    return path


def run_tool(*arguments: str) -> str:
    result = subprocess.run([tool(), *arguments], capture_output=True, text=True)
    assert result.returncode == 0, f"pyramid {' '.join(arguments)}: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> str:
    """600 Fashion-MNIST training images at 28, 20 and 14 px, in two shards."""
    if not FASHION.exists():
        pytest.skip("Fashion-MNIST is not installed (Tools/bootstrap installs dataset-fashion-mnist)")
    out = tmp_path_factory.mktemp("caches") / "fashion-600"
    run_tool("build", str(FASHION), "--out", str(out), "--levels", "28,20,14", "--limit", "600", "--shards", "2", "--quiet")
    return str(out)


@pytest.fixture()
def damaged_cache(cache, tmp_path) -> str:
    """A copy of `cache` with one 14 px record's payload changed: its checksum fails."""
    copy = tmp_path / "damaged"
    shutil.copytree(cache, copy)
    # Version 3 keeps the level in a file of its own (version 2: every level in data.mdb).
    data = copy / "shard-00000" / "level-14.mdb"
    if not data.exists():
        data = copy / "shard-00000" / "data.mdb"
    raw = bytes(data.read_bytes())
    # Record headers (version 2 records, in version 2 and 3 caches) at 14x14, grey, zstd (codec 1). LMDB keeps stale copies of pages
    # from earlier commits in the file: a flip is kept once `pyramid verify` sees it in a live record.
    header = bytes([2, 1, 0, 1, 14, 0, 14, 0])
    at = raw.rfind(header)
    for _ in range(60):
        if at < 0:
            break
        damaged = bytearray(raw)
        damaged[at + 12] ^= 0x5A
        data.write_bytes(bytes(damaged))
        verify = subprocess.run([tool(), "verify", str(copy), "--quiet"], capture_output=True, text=True)
        if verify.returncode == 1 and "level 14" in verify.stdout:
            return str(copy)
        at = raw.rfind(header, 0, at)
    pytest.fail("no live 14 px record found to damage")
