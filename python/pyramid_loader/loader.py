"""The PyTorch loader over libPyramidC."""

from __future__ import annotations

import _thread
import ctypes
import hashlib
import json
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, NoReturn, Optional, Union

import numpy as np

from . import _native
from ._native import PyramidError

try:
    import torch
except ImportError:  # the package imports without torch; the Loader needs it
    torch = None

OUTPUTS = ("float32", "float16", "uint8")
# Settings that decide which images the stream holds and in what order: a state_dict made under
# other values is refused. The rank is not one (every rank loads the same state), nor the world
# size or per-process batch: the global batch (batch_size × world_size) is compared on its own.
FINGERPRINT_KEYS = ("schedule", "seed", "epochs", "augment", "shuffle", "order", "drop_last", "corrupt_records", "cache")
# How long one wait inside the library lasts: between waits Python handles signals (Ctrl-C).
POLL_MS = 100
# The C interface takes 64-bit integers: larger ones would wrap silently through ctypes.
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1


def _to_the_end(action: Callable[[], object]) -> bool:
    """Runs `action` (a native call that is safe to repeat: a second release of the same batch is
    refused, never harmful) until it has run, even when a Ctrl-C lands in it; returns whether one did."""
    interrupted = False
    while True:
        try:
            action()
            return interrupted
        except KeyboardInterrupt:
            interrupted = True
        except Exception:
            return interrupted


def _path_bytes(path: Union[str, bytes, os.PathLike]) -> bytes:
    """The path as the library takes it: bytes without NUL that are valid UTF-8 (the library names
    files in UTF-8; another encoding would open a different path)."""
    raw = os.fsencode(path)
    if b"\0" in raw:
        raise ValueError(f"path: {path!r} holds a NUL character")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"path: {path!r} is not valid UTF-8 (byte {e.start}); rename it or use a link with a UTF-8 name") from None
    return raw


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    """TypeError for a non-integer, ValueError outside low…high (what ctypes would wrap)."""
    _check_type(name, value, (int,), optional=False)
    if not low <= value <= high:
        raise ValueError(f"{name}: {value} is outside {low}…{high}")


class _Handle:
    """Owns one native loader; closed with close() or when the Loader is gone. Batches still
    viewed by tensors stay valid after the close until their tensors go."""

    def __init__(self, path: Union[str, bytes, os.PathLike], configuration: Dict[str, Any]) -> None:
        self.pointer = ctypes.c_void_p()
        self.pid = os.getpid()
        self.closed = False
        raw = _path_bytes(path)
        try:
            _native.call(_native.lib.pyramid_open, raw, json.dumps(configuration).encode(), ctypes.byref(self.pointer))
            # Closes the loader when this object dies, in native code (no __del__ to drop a Ctrl-C in).
            self.closer = _native.owner(self.pointer, 0)
        except BaseException:
            self.closed = True
            if self.pointer.value:
                _native.lib.pyramid_close(self.pointer, None)
            raise

    def check_process(self) -> None:
        if self.closed:
            raise PyramidError("the Loader is closed")
        if os.getpid() != self.pid:
            raise PyramidError(f"this Loader was made in process {self.pid} and used in process {os.getpid()}, forked after it "
                               "started; make the Loader in the process that iterates it (e.g. in a DataLoader worker)")

    def release(self, batch_id: int) -> bool:
        """Gives batch `batch_id` back (never raises); returns whether a Ctrl-C landed meanwhile."""
        if os.getpid() != self.pid:
            return False  # a forked child: the buffer belongs to the parent's loader
        return _to_the_end(lambda: _native.call(_native.lib.pyramid_release, self.pointer, batch_id))

    def close(self) -> None:
        """Stops the native loader; batches still viewed are released as their tensors go."""
        if not self.closed and os.getpid() == self.pid:
            self.closed = True
            try:
                _native.call(_native.lib.pyramid_close, self.pointer)
            except PyramidError:
                pass  # closed by its owner already


class _View:
    """`__array_interface__` of one view of a batch buffer (no copy); holds the batch's owner (a
    capsule that releases the batch in native code when the last view is gone)."""

    def __init__(self, owner: object, address: int, shape: tuple, typestr: str) -> None:
        self.owner = owner
        self.__array_interface__ = {"shape": shape, "typestr": typestr, "data": (address, False), "version": 3}


@dataclass
class Batch:
    """One step's data for this rank.

    `images` is a tensor (N, C, S, S), or for a parallel schedule a dict {size: tensor}, largest
    first. Tensors are views of Pyramid's batch buffer, not copies (except float16 on the CPU and
    device outputs): the buffer returns to the loader only when no tensor views it any more, so
    keeping a batch is safe and costs one buffer per batch kept.
    """
    images: Any
    labels: Any
    indices: Any
    epoch: int
    step: int
    sizes: List[int]
    cursor: int
    next_cursor: int
    substitutions: int

    @property
    def size(self) -> int:
        """The size of a single-size step (the largest of a parallel step)."""
        return self.sizes[0]


def _distributed_defaults(rank: Optional[int], world_size: Optional[int]) -> tuple:
    if rank is not None and world_size is not None:
        return rank, world_size
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        r, w = torch.distributed.get_rank(), torch.distributed.get_world_size()
    else:
        def variable(name: str, default: str) -> int:
            text = os.environ.get(name, default)
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{name}={text!r} in the environment is not an integer (torchrun and mpirun set it to the "
                                 f"process's {'rank' if name == 'RANK' else 'process count'})") from None
        r, w = variable("RANK", "0"), variable("WORLD_SIZE", "1")
    return (r if rank is None else rank), (w if world_size is None else world_size)


def _check_type(name: str, value: Any, kinds: tuple, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) and bool not in kinds:
        raise TypeError(f"{name} must be {' or '.join(k.__name__ for k in kinds)}, not bool")
    if not isinstance(value, kinds):
        raise TypeError(f"{name} must be {' or '.join(k.__name__ for k in kinds)}, not {type(value).__name__}")


# A torch Dataset when torch is there, so that DataLoader(loader, batch_size=None) takes it.
_DatasetBase: Any = torch.utils.data.IterableDataset if torch is not None else object


def _in_dataloader_worker() -> Optional[int]:
    """The id of the DataLoader worker this runs in, or None."""
    if torch is None:
        return None
    info = torch.utils.data.get_worker_info()
    return None if info is None else info.id


_WORKER_MESSAGE = ("a pyramid_loader.Loader loads on its own threads: iterate it directly, or pass it to "
                   "DataLoader(loader, batch_size=None) with num_workers=0. Inside DataLoader worker processes every "
                   "worker would serve the whole epoch (each image num_workers times), so this is refused")


class Loader(_DatasetBase):
    """Batches from a Pyramid cache under a resolution schedule, as torch tensors.

    Parameters
    ----------
    path : str or os.PathLike
        The cache directory (made by ``pyramid build``).
    schedule : str, optional
        ``"fixed:224"``, ``"trd:224,128,p=0.5"``, ``"mixsize:…"``, ``"parallel:224,192,160"``,
        ``"progressive:…"`` (``pyramid plan --help`` has the syntax). Default: fixed at the
        cache's largest level.
    batch_size : int
        Base images per rank per step (MixSize scales it per size).
    epochs : int
        Epochs of the run (TRD and progressive schedules plan with it).
    seed : int
        Seed of the order, crops, flips and schedule draws: batches are a pure function of the
        cache, these settings, the epoch and the step.
    augment : str, optional
        ``"rrc"``, ``"pad:4+flip"``, ``"none"``, … Default: the cache's training augmentation
        (its evaluation view with ``shuffle=False``).
    rank, world_size : int, optional
        This process's share of every step. Default: from ``torch.distributed`` when it is
        initialized, else from the ``RANK`` and ``WORLD_SIZE`` variables, else 0 of 1.
    workers : int, optional
        Loader threads (default: the cores). prefetch: batch buffers in use at once.
    output : {"float32", "float16", "uint8"}
        float32: NCHW, normalized with the cache's mean and std. float16: the same, converted
        (a copy on the CPU). uint8: the rendered pixels, NHWC viewed as a channels-last NCHW tensor.
    device : str or torch.device, optional
        A CUDA device: pinned host buffers, non-blocking copies, normalization on the GPU in the
        chosen dtype (not yet run on a GPU: the machines it was developed on have none).
    shuffle, drop_last : bool
        A permutation per epoch (training) or index order (evaluation); drop the partial last step.
    order : str, optional
        How a shuffled epoch is ordered: ``"global"`` (every sample permuted) or ``"shards:W"``
        (the shards shuffled, then the samples of every W shards together: what lets an
        ``s3://`` cache stream through a small local cache). Default: global for a directory,
        shards:4 for ``s3://``. A path ``s3://bucket/prefix`` reads a published cache (credentials
        and endpoint from the AWS variables; ``PYRAMID_CACHE_DIR`` and ``PYRAMID_CACHE_LIMIT``
        set the local cache directory and its byte limit).
    corrupt_records : {"fail", "substitute"}
        A corrupt record raises PyramidError naming shard, index and level, or is replaced by the
        next sample and counted (``Batch.substitutions``, ``Loader.substitutions()``).

    Raises
    ------
    TypeError, ValueError
        For arguments of a wrong type or value, with the library's message.
    PyramidError
        For a cache that cannot be read.
    """

    def __init__(self, path: Union[str, bytes, os.PathLike], schedule: Optional[str] = None, batch_size: int = 128, epochs: int = 1,
                 seed: int = 0, augment: Optional[str] = None, rank: Optional[int] = None, world_size: Optional[int] = None,
                 workers: Optional[int] = None, prefetch: Optional[int] = None, output: str = "float32", device: Union[str, int, "torch.device", None] = None,
                 shuffle: bool = True, drop_last: Optional[bool] = None, corrupt_records: str = "fail",
                 order: Optional[str] = None) -> None:
        if torch is None:
            raise ImportError("pyramid_loader.Loader needs torch (pip install torch)")
        if _in_dataloader_worker() is not None:
            raise PyramidError(f"made in DataLoader worker {_in_dataloader_worker()}: {_WORKER_MESSAGE}")
        _check_type("path", path, (str, bytes, os.PathLike), optional=False)
        checks: List[tuple] = [(name, value, (str,), True) for name, value in (("schedule", schedule), ("augment", augment), ("order", order))]
        checks += [("output", output, (str,), False), ("corrupt_records", corrupt_records, (str,), False)]
        checks += [(name, value, (int,), False) for name, value in (("batch_size", batch_size), ("epochs", epochs), ("seed", seed))]
        checks += [(name, value, (int,), True) for name, value in (("rank", rank), ("world_size", world_size), ("workers", workers), ("prefetch", prefetch))]
        checks += [("shuffle", shuffle, (bool,), False), ("drop_last", drop_last, (bool,), True)]
        for name, value, kinds, optional in checks:
            _check_type(name, value, kinds, optional=optional)
        if output not in OUTPUTS:
            raise ValueError(f"output: '{output}' is not one of {', '.join(OUTPUTS)}")
        _check_int("batch_size", batch_size, 1, INT64_MAX)
        _check_int("epochs", epochs, 1, INT64_MAX)
        _check_int("seed", seed, 0, UINT64_MAX)
        for name, count in (("rank", rank), ("world_size", world_size), ("workers", workers), ("prefetch", prefetch)):
            if count is not None:
                _check_int(name, count, 0, INT64_MAX)
        if device is not None and not isinstance(device, (str, int, torch.device)):
            raise TypeError(f"device must be str, int or torch.device, not {type(device).__name__}")
        try:
            self.device = torch.device(device) if device is not None else None
        except RuntimeError as e:
            raise ValueError(f"device: {device!r} is not a device ({e})") from None
        if self.device is not None and self.device.type not in ("cuda", "cpu"):
            raise ValueError(f"device: {self.device} is not a CUDA device or the CPU")
        if self.device is not None and self.device.type == "cpu":
            self.device = None
        if self.device is not None and not torch.cuda.is_available():
            raise ValueError(f"device: {self.device} asked for, but CUDA is not available")
        rank, world_size = _distributed_defaults(rank, world_size)
        self.output = output
        native_output = "uint8" if output == "uint8" or self.device is not None else "float32"
        configuration = {"schedule": schedule, "batch_size": batch_size, "seed": seed, "epochs": epochs, "augment": augment,
                         "rank": rank, "world_size": world_size, "workers": workers, "prefetch": prefetch,
                         "output": native_output, "shuffle": shuffle, "drop_last": drop_last, "corrupt_records": corrupt_records,
                         "order": order}
        self._handle = _Handle(os.fspath(path), {k: v for k, v in configuration.items() if v is not None})
        description = json.loads(_native.call_json(_native.lib.pyramid_describe, self._handle.pointer))
        self.manifest: Dict[str, Any] = description["manifest"]
        self.configuration: Dict[str, Any] = description["configuration"]
        self.path = os.fspath(path)
        self.epochs = epochs
        self._epoch = 0
        # The stream position after the last batch yielded in _epoch (what state_dict saves).
        self._position = 0
        # A position restored by load_state_dict (or batches(cursor=)) that the next iteration of
        # _epoch starts from; None: iterations start at the epoch's beginning.
        self._resume: Optional[int] = None
        self._mean = [m * 255 for m in self.manifest["mean"]]
        self._std = [max(s, 1e-6) * 255 for s in self.manifest["std"]]
        self._pinned: Dict[int, int] = {}
        self._normalization: Dict[tuple, tuple] = {}  # (channels, dtype) -> mean, std on the device
        self._in_flight: List[tuple] = []
        # One iteration at a time: a second one (another loop, another thread) would share the
        # native stream and cut both short.
        self._iterating = False
        self._iteration_lock = threading.Lock()

    def __reduce__(self) -> NoReturn:
        raise TypeError("a pyramid_loader.Loader cannot be pickled or sent to another process: it owns native threads and "
                        "buffers. It loads on its own threads, so iterate it directly rather than through DataLoader workers; "
                        "to load in another process, make a Loader there with the same settings")

    # MARK: Schedule

    def set_epoch(self, epoch: int) -> None:
        """Makes `epoch` the one the next iteration serves, from its start, except right after
        ``load_state_dict`` with the restored epoch: then the restored position is kept (so a loop
        that calls ``set_epoch`` at the top of every epoch resumes where the state says).

        Parameters
        ----------
        epoch : int
            0-based, below 2**63.
        """
        _check_int("epoch", epoch, 0, INT64_MAX)
        if self._resume is not None and epoch == self._epoch:
            return
        self._epoch, self._position, self._resume = epoch, 0, None

    @property
    def epoch(self) -> int:
        """The epoch the next iteration serves (after a complete pass, the next one)."""
        return self._epoch

    def plan(self, epochs: Optional[int] = None) -> List[List[Dict[str, Any]]]:
        """Every step of epochs 0 … epochs-1 (default: the run's), without reading a pixel: a list
        per epoch of {"sizes", "batch", "duplicates", "cursor", "images"} (`batch` per rank)."""
        count = self.epochs if epochs is None else epochs
        _check_int("epochs", count, 0, INT64_MAX)
        self._handle.check_process()
        data = json.loads(_native.call_json(_native.lib.pyramid_plan, self._handle.pointer, 0, count))
        return [epoch["steps"] for epoch in data["epochs"]]

    def left_out(self, epoch: Optional[int] = None) -> int:
        """Samples an epoch's plan does not serve (over all ranks): with ``drop_last`` the partial
        steps' images (MixSize: one partial step per size), else 0.

        Parameters
        ----------
        epoch : int, optional
            Default: the current epoch.
        """
        e = self._epoch if epoch is None else epoch
        _check_int("epoch", e, 0, INT64_MAX)
        self._handle.check_process()
        data = json.loads(_native.call_json(_native.lib.pyramid_plan, self._handle.pointer, e, 1))
        return int(self.manifest["sampleCount"]) - sum(int(step["images"]) for step in data["epochs"][0]["steps"])

    def steps(self) -> List[Dict[str, Any]]:
        """The steps the next iteration serves: the current epoch's, or after ``load_state_dict``
        the rest of the restored one. Each is {"sizes", "batch", "duplicates", "cursor", "images"}."""
        self._handle.check_process()
        start = self._resume or 0
        data = json.loads(_native.call_json(_native.lib.pyramid_plan_from, self._handle.pointer, self._epoch, start))
        return data["epochs"][0]["steps"]

    def __len__(self) -> int:
        """Steps the next iteration serves: the current epoch's (MixSize's B+ changes it from
        epoch to epoch), or after ``load_state_dict`` what remains of the restored epoch."""
        return len(self.steps())

    # MARK: Iteration

    def __iter__(self) -> Iterator[tuple]:
        """(images, labels) of the current epoch, from its start (or from the position
        ``load_state_dict`` restored). Every ``iter()`` starts afresh, like a DataLoader's: after a
        ``break``, the next loop serves the epoch again from its first batch. After a complete
        pass the next epoch is current."""
        for batch in self.batches():
            yield batch.images, batch.labels

    def batches(self, epoch: Optional[int] = None, cursor: Optional[int] = None) -> Iterator[Batch]:
        """The batches of `epoch` (default: the current one) as ``Batch`` objects.

        Parameters
        ----------
        epoch : int, optional
            The epoch to serve (``set_epoch`` first); default the current one.
        cursor : int, optional
            The stream position to start at (a ``Batch.next_cursor``); default the epoch's
            start, or the position ``load_state_dict`` restored.
        """
        if epoch is not None:
            self.set_epoch(epoch)
        if cursor is not None:
            _check_int("cursor", cursor, 0, INT64_MAX)
            self._resume = cursor
        return self._batches()

    def _batches(self) -> Iterator[Batch]:
        worker = _in_dataloader_worker()
        if worker is not None:
            raise PyramidError(f"iterated in DataLoader worker {worker}: {_WORKER_MESSAGE}")
        handle = self._handle
        handle.check_process()
        with self._iteration_lock:
            if self._iterating:
                raise PyramidError("this Loader is being iterated already (another loop or thread): one iteration at a time "
                                   "shares its stream; finish or close the first (break out of its loop, or del its iterator)")
            self._iterating = True
        try:
            yield from self._stream(handle)
        finally:
            with self._iteration_lock:
                self._iterating = False

    def _stream(self, handle: "_Handle") -> Iterator[Batch]:
        start, self._resume = self._resume or 0, None
        self._position = start
        _native.call(_native.lib.pyramid_start_epoch, handle.pointer, self._epoch, start)
        info = _native.BatchInfo()
        finished = False
        try:
            while True:
                handle.check_process()
                info.id = 0  # batch ids start at 1: nonzero is a batch handed out and not yet owned
                status = _native.call(_native.lib.pyramid_next, handle.pointer, POLL_MS, ctypes.byref(info))
                if status == _native.TIMEOUT:
                    continue  # Python handles a Ctrl-C here
                if status == _native.END:
                    finished = True
                    break
                batch = self._wrap(info)
                info.id = 0  # its owner releases it now
                self._position = batch.next_cursor
                yield batch
        finally:
            # A Ctrl-C between the library handing out a batch and its owner taking it would leak
            # the batch: give it back (a second release, if the owner got it after all, is refused).
            interrupted = info.id != 0 and handle.release(info.id)
            if not handle.closed and os.getpid() == handle.pid:
                interrupted |= _to_the_end(lambda: _native.call(_native.lib.pyramid_stop_epoch, handle.pointer))
            if finished:
                self._epoch, self._position = self._epoch + 1, 0
            if interrupted:
                _thread.interrupt_main()  # raising here would be lost when this runs in a collector's close()

    def _wrap(self, info: _native.BatchInfo) -> Batch:
        owner = _native.owner(self._handle.pointer, info.id)
        count, channels = info.count, info.channels
        sizes = [info.sizes[v] for v in range(info.views)]
        views = {}
        for v, s in enumerate(sizes):
            if info.format == _native.FLOAT32:
                array = np.asarray(_View(owner, info.data[v], (count, channels, s, s), "<f4"))
                tensor = torch.from_numpy(array)
                if self.output == "float16":
                    tensor = tensor.half()
            else:
                array = np.asarray(_View(owner, info.data[v], (count, s, s, channels), "|u1"))
                tensor = torch.from_numpy(array).permute(0, 3, 1, 2)  # channels-last NCHW, no copy
                if self.device is not None:
                    tensor = self._to_device(tensor, info.data[v], array.nbytes, owner)
            views[s] = tensor
        labels = torch.from_numpy(np.ctypeslib.as_array(info.labels, shape=(count,)).astype(np.int64))
        indices = torch.from_numpy(np.ctypeslib.as_array(info.indices, shape=(count,)).copy())
        if self.device is not None:
            labels = labels.to(self.device, non_blocking=True)
        images = views if self.configuration["parallel"] else views[sizes[0]]
        return Batch(images=images, labels=labels, indices=indices, epoch=info.epoch, step=info.step, sizes=sizes,
                     cursor=info.cursor, next_cursor=info.next_cursor, substitutions=info.substitutions)

    def _to_device(self, host: "torch.Tensor", address: int, nbytes: int, owner: object) -> "torch.Tensor":
        """Copies a uint8 batch to the GPU from pinned memory and normalizes it there. The host
        buffer is kept (through its owner) until the copy's event has completed."""
        if address not in self._pinned:
            # Registering is slow: once per buffer (the loader reuses a few).
            torch.cuda.cudart().cudaHostRegister(address, nbytes, 0)
            self._pinned[address] = nbytes
        self._in_flight = [(e, o) for e, o in self._in_flight if not e.query()]
        device_tensor = host.to(self.device, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._in_flight.append((event, owner))
        if self.output == "uint8":
            return device_tensor
        dtype = torch.float16 if self.output == "float16" else torch.float32
        c = device_tensor.shape[1]
        if (c, dtype) not in self._normalization:  # made once, not per batch
            self._normalization[(c, dtype)] = tuple(torch.tensor(v[:c], device=self.device, dtype=dtype).view(1, c, 1, 1)
                                                    for v in (self._mean, self._std))
        mean, std = self._normalization[(c, dtype)]
        return (device_tensor.to(dtype) - mean) / std

    # MARK: Resume

    def _fingerprint(self) -> Dict[str, Any]:
        c = dict(self.configuration)
        # The build's id: two caches built in the same second are still two caches.
        build = self.manifest.get("buildOptions", {}).get("buildID")
        c["cache"] = build if build else self.manifest.get("createdAt", "") + "/" + str(self.manifest.get("sampleCount"))
        return {k: c.get(k) for k in FINGERPRINT_KEYS}

    @property
    def global_batch(self) -> int:
        """Base images per step over all ranks: ``batch_size × world_size``."""
        return int(self.configuration["batch_size"]) * int(self.configuration["world_size"])

    def state_dict(self) -> Dict[str, Any]:
        """Where the run is, the same on every rank: the epoch and the global stream position after
        the last batch yielded, the global batch, and the settings that decide the stream.

        Save it from one rank (rank 0) and load it on every rank: the state holds no rank. It
        resumes under another world size whenever the global batch is the same (``batch_size ×
        world_size``); see ``load_state_dict``.
        """
        settings = self._fingerprint()
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        return {"epoch": self._epoch, "cursor": self._position, "global_batch": self.global_batch, "fingerprint": digest,
                "settings": settings, "version": _native.version()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continues from `state` (from ``state_dict``, on any rank): the next iteration of the
        restored epoch starts at its position (``set_epoch`` with that epoch keeps it).

        With the same global batch (any world size whose ``batch_size × world_size`` is the saved
        one) the run continues step for step as if it had not stopped. With another global batch
        the rest of the epoch is planned afresh from the position: every remaining image is still
        served once, but the steps are not those an uninterrupted run would have taken; a
        ``RuntimeWarning`` says so.

        Raises
        ------
        ValueError
            For a state made under other settings (naming them, ``seed 11 -> 12``), or not a
            state_dict.
        """
        if not isinstance(state, dict) or "epoch" not in state or "cursor" not in state:
            raise ValueError("state: not a pyramid_loader state_dict (needs epoch and cursor)")
        mine = self._fingerprint()
        theirs = state.get("settings", {})
        changed = [k for k in FINGERPRINT_KEYS if theirs.get(k) != mine.get(k)]
        if changed:
            details = ", ".join(f"{k} {theirs.get(k)!r} -> {mine.get(k)!r}" for k in changed)
            raise ValueError(f"state: made under other settings ({details}); resume with the same ones")
        _check_int("epoch", state["epoch"], 0, INT64_MAX)
        _check_int("cursor", state["cursor"], 0, INT64_MAX)
        saved = state.get("global_batch")
        if saved is None and "batch_size" in theirs and "world_size" in theirs:  # a state of version 0.1
            saved = int(theirs["batch_size"]) * int(theirs["world_size"])
        if saved is not None and saved != self.global_batch and state["cursor"] > 0:
            warnings.warn(f"state: saved with a global batch of {saved}, resumed with {self.global_batch} "
                          f"(batch_size {self.configuration['batch_size']} × world_size {self.configuration['world_size']}): "
                          f"the rest of epoch {state['epoch']} is planned afresh from position {state['cursor']}; every "
                          "remaining image is served once, but not in the steps an uninterrupted run would have taken",
                          RuntimeWarning, stacklevel=2)
        self._epoch, self._position = state["epoch"], state["cursor"]
        self._resume = state["cursor"] if state["cursor"] > 0 else None

    # MARK: Other

    def substitutions(self) -> List[Dict[str, Any]]:
        """Corrupt records replaced so far (corrupt_records="substitute")."""
        self._handle.check_process()
        return json.loads(_native.call_json(_native.lib.pyramid_substitutions, self._handle.pointer))

    def close(self) -> None:
        """Stops the loader. Tensors still viewing batches keep their buffers until they are gone."""
        for address in list(self._pinned):
            try:
                torch.cuda.cudart().cudaHostUnregister(address)
            except Exception:
                pass
        self._pinned.clear()
        self._handle.close()

    def __enter__(self) -> "Loader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        c = self.configuration
        return (f"Loader({self.path!r}, schedule={c['schedule']!r}, batch_size={c['batch_size']}, seed={c['seed']}, "
                f"rank={c['rank']}, world_size={c['world_size']}, output={self.output!r})")
