"""Builds libPyramidC with the Swift toolchain and ships it inside the package.

`pip install ./python` runs this: `swift build -c release --product PyramidC` with the Swift
runtime linked statically (`-static-stdlib`: the library imports FoundationEssentials, not all
of Foundation) and a run path of `$ORIGIN`, then copies the library, stripped, and the system
libraries it links that a Python environment may lack (LMDB, zstd, TurboJPEG, xxHash: Debian
ships no position-independent static archives of them) into `pyramid_loader/lib/`. libcurl is not
among them: the library loads the system's when an s3:// cache is first opened. The installed
package then loads without the toolchain on any path.

PYRAMID_SOURCE names the repository (default: this file's parent's parent); PYRAMID_SWIFT the
`swift` executable (default: the one on PATH).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

# Libraries every Linux system has; everything else the library links is copied beside it.
SYSTEM_LIBRARIES = ("linux-vdso", "ld-linux", "libc.so", "libm.so", "libpthread.so", "libdl.so", "librt.so",
                    "libstdc++.so", "libgcc_s.so")


def repository() -> Path:
    root = Path(os.environ.get("PYRAMID_SOURCE", Path(__file__).resolve().parent.parent))
    if not (root / "Package.swift").exists():
        sys.exit(f"pyramid-loader: {root} is not Pyramid's repository (no Package.swift); set PYRAMID_SOURCE")
    return root


def build_library(root: Path) -> Path:
    swift = os.environ.get("PYRAMID_SWIFT") or shutil.which("swift")
    if swift is None:
        sys.exit("pyramid-loader: building needs the Swift toolchain (`swift` on PATH, or PYRAMID_SWIFT)")
    scratch = root / ".build-python"
    command = [swift, "build", "-c", "release", "--product", "PyramidC", "--scratch-path", str(scratch),
               "-Xswiftc", "-static-stdlib", "-Xlinker", "-rpath", "-Xlinker", "$ORIGIN"]
    print("pyramid-loader: " + " ".join(command), flush=True)
    subprocess.run(command, cwd=root, check=True)
    library = scratch / "release" / "libPyramidC.so"
    if not library.exists():
        sys.exit(f"pyramid-loader: the build did not make {library}")
    return library


def dependencies(library: Path) -> list[Path]:
    """The non-system shared libraries `library` loads, as `ldd` resolves them."""
    out = subprocess.run(["ldd", str(library)], check=True, capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split("=>")
        if len(parts) != 2:
            continue
        name, target = parts[0].strip(), parts[1].split("(")[0].strip()
        if any(name.startswith(s) for s in SYSTEM_LIBRARIES):
            continue
        if target == "not found":
            sys.exit(f"pyramid-loader: {library.name} needs {name}, which is not installed (run Tools/bootstrap)")
        found.append(Path(target))
    return found


class BuildWithSwift(build_py):
    def run(self):
        super().run()
        root = repository()
        library = build_library(root)
        destination = Path(self.build_lib) / "pyramid_loader" / "lib"
        # setuptools keeps build_lib between builds: libraries an earlier build needed must not ship.
        shutil.rmtree(destination, ignore_errors=True)
        destination.mkdir(parents=True, exist_ok=True)
        target = destination / library.name
        shutil.copy2(library, target)
        if shutil.which("strip"):
            subprocess.run(["strip", "--strip-unneeded", str(target)], check=True)
        for dependency in dependencies(library):
            # Copied under the name the library asks for (its soname), following links.
            shutil.copy2(dependency.resolve(), destination / dependency.name)


class BinaryDistribution(Distribution):
    """A wheel for this platform: the package carries a native library."""

    def has_ext_modules(self):
        return True


try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools before 70.1
    from wheel.bdist_wheel import bdist_wheel


class PlatformWheel(bdist_wheel):
    """Tagged py3-none-PLATFORM: the library is loaded with ctypes, not as a CPython extension,
    so one wheel serves every Python 3.9+ on its platform (auditwheel then names the glibc)."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(cmdclass={"build_py": BuildWithSwift, "bdist_wheel": PlatformWheel}, distclass=BinaryDistribution)
