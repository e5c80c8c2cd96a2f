"""PyTorch batches from Pyramid's multi-resolution caches.

    from pyramid_loader import Loader
    loader = Loader("cache/", schedule="trd:224,128,p=0.5", batch_size=64, epochs=90)
    for epoch in range(90):
        loader.set_epoch(epoch)
        for images, labels in loader:
            ...
"""

from ._native import PyramidError, version
from ._version import __version__
from .loader import Batch, Loader

__all__ = ["Batch", "Loader", "PyramidError", "__version__", "version"]
