"""ctypes declarations of libPyramidC (include/pyramid.h) and the one place its statuses become exceptions."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

MAX_VIEWS = 16
OK, END, TIMEOUT, ERROR, INVALID = 0, 1, 2, -1, -2
FLOAT32, UINT8 = 0, 1
ABI_VERSION = 2


class PyramidError(RuntimeError):
    """The cache, a record or the loader failed: an unreadable cache, a corrupt record (the message
    names shard, index and level), a loader used after fork, a released batch."""


class BatchInfo(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64),
        ("epoch", ctypes.c_int64),
        ("step", ctypes.c_int64),
        ("count", ctypes.c_int64),
        ("channels", ctypes.c_int64),
        ("cursor", ctypes.c_int64),
        ("next_cursor", ctypes.c_int64),
        ("substitutions", ctypes.c_int64),
        ("format", ctypes.c_int32),
        ("views", ctypes.c_int32),
        ("sizes", ctypes.c_int64 * MAX_VIEWS),
        ("data", ctypes.c_void_p * MAX_VIEWS),
        ("labels", ctypes.POINTER(ctypes.c_int32)),
        ("indices", ctypes.POINTER(ctypes.c_int64)),
    ]


def library_path() -> Path:
    """PYRAMID_LIBRARY if set (a development build), else the library installed in the package."""
    override = os.environ.get("PYRAMID_LIBRARY")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent / "lib" / "libPyramidC.so"


def _load() -> ctypes.CDLL:
    path = library_path()
    if not path.exists():
        raise ImportError(f"pyramid_loader: {path} is missing; install the package with `pip install ./python` "
                          "from Pyramid's repository (it builds the library), or set PYRAMID_LIBRARY")
    # CDLL, not PyDLL: the interpreter lock is released during every call, so other Python threads
    # run while pyramid_next waits for a batch.
    lib = ctypes.CDLL(str(path))
    err = ctypes.POINTER(ctypes.c_void_p)
    handle = ctypes.c_void_p
    out = ctypes.POINTER(ctypes.c_void_p)
    signatures = {
        "pyramid_abi_version": ([], ctypes.c_int32),
        "pyramid_version_number": ([], ctypes.c_uint32),
        "pyramid_status_name": ([ctypes.c_int32], ctypes.c_char_p),
        "pyramid_version": ([], ctypes.c_char_p),
        "pyramid_string_free": ([ctypes.c_void_p], None),
        "pyramid_digest": ([ctypes.c_void_p, ctypes.c_size_t], ctypes.c_uint64),
        "pyramid_open": ([ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(handle), err], ctypes.c_int32),
        "pyramid_close": ([handle, err], ctypes.c_int32),
        "pyramid_describe": ([handle, out, err], ctypes.c_int32),
        "pyramid_plan": ([handle, ctypes.c_int64, ctypes.c_int64, out, err], ctypes.c_int32),
        "pyramid_plan_from": ([handle, ctypes.c_int64, ctypes.c_int64, out, err], ctypes.c_int32),
        "pyramid_start_epoch": ([handle, ctypes.c_int64, ctypes.c_int64, err], ctypes.c_int32),
        "pyramid_stop_epoch": ([handle, err], ctypes.c_int32),
        "pyramid_ticket": ([handle, ctypes.c_uint64], ctypes.c_void_p),
        "pyramid_redeem_ticket": ([ctypes.c_void_p], None),
        "pyramid_set_capsule_getter": ([ctypes.c_void_p], None),
        "pyramid_capsule_name": ([], ctypes.c_void_p),
        "pyramid_next": ([handle, ctypes.c_int32, ctypes.POINTER(BatchInfo), err], ctypes.c_int32),
        "pyramid_release": ([handle, ctypes.c_uint64, err], ctypes.c_int32),
        "pyramid_substitutions": ([handle, out, err], ctypes.c_int32),
    }
    for name, (arguments, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = arguments
        function.restype = result
    found = lib.pyramid_abi_version()
    if found != ABI_VERSION:
        raise ImportError(f"pyramid_loader: {path} has C interface version {found}, this package needs {ABI_VERSION}")
    return lib


lib = _load()

# Owners of batches (and of the loader's close) are capsules whose destructor is the library's: when
# the last tensor viewing a batch dies, the release runs in native code, with no Python code in which
# a Ctrl-C could land and be dropped (see pyramid_ticket in pyramid.h).
_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
_capsule_new.restype = ctypes.py_object
lib.pyramid_set_capsule_getter(ctypes.cast(ctypes.pythonapi.PyCapsule_GetPointer, ctypes.c_void_p))
_CAPSULE_NAME = lib.pyramid_capsule_name()
_CAPSULE_DESTRUCTOR = ctypes.cast(lib.pyramid_capsule_destructor, ctypes.c_void_p)


def owner(loader: ctypes.c_void_p, batch_id: int) -> object:
    """An object that releases batch `batch_id` of `loader` when it dies (batch 0: closes the loader)."""
    ticket = lib.pyramid_ticket(loader, batch_id)
    if not ticket:
        raise PyramidError("pyramid_ticket: the loader is NULL")
    try:
        return _capsule_new(ticket, _CAPSULE_NAME, _CAPSULE_DESTRUCTOR)
    except BaseException:
        lib.pyramid_redeem_ticket(ticket)
        raise


def take_string(pointer: ctypes.c_void_p) -> str:
    """The C string at `pointer`, freed."""
    if not pointer.value:
        return ""
    try:
        return ctypes.string_at(pointer.value).decode("utf-8", errors="replace")
    finally:
        lib.pyramid_string_free(pointer)


def call(function: Any, *arguments: Any) -> int:
    """Calls `function(*arguments, &error)`; a failure raises ValueError (a bad argument) or
    PyramidError (everything else) with the library's message."""
    error = ctypes.c_void_p()
    status = function(*arguments, ctypes.byref(error))
    if status in (OK, END, TIMEOUT):
        return status
    message = take_string(error) or f"{function.__name__} failed with status {status}"
    if status == INVALID:
        raise ValueError(message)
    raise PyramidError(message)


def call_json(function: Any, *arguments: Any) -> str:
    """Calls a function that returns JSON through its last-but-one argument."""
    out = ctypes.c_void_p()
    call(function, *arguments, ctypes.byref(out))
    return take_string(out)


def digest(address: int, length: int) -> int:
    """XXH3-64 of `length` bytes at `address`, as `pyramid batches` prints it."""
    return lib.pyramid_digest(ctypes.c_void_p(address), length)


def version() -> str:
    return lib.pyramid_version().decode()
