"""Run exported backbones with the LiteRT interpreter: the prediction path, no TensorFlow.

Keras (on TensorFlow) builds, trains and exports the backbones; prediction runs the
exported ``.tflite`` file with ``ai_edge_litert`` (import ≈ 0.05 s, against ≈ 5.6 s and
670 MB for TensorFlow; see ../shared/DESIGN.md, "Serving").

Thread safety: one interpreter per thread (``threading.local``), created on a thread's
first call, so a :class:`LiteRTBackbone` can be shared by threads without a lock; each
interpreter uses ``num_threads`` CPU threads (default: all cores).
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backbones.patches import PatchGrid, grid_positions, pool_outputs, take_patches

__all__ = ["BackboneFileError", "LiteRTBackbone", "LiteRTFunction", "SplitPairBackbone"]


class BackboneFileError(ValueError):
    """An exported backbone file is missing or not a model the interpreter can load."""


_banner_lock = threading.Lock()
_banner_silenced = False


def _allocate(interpreter: Any) -> None:
    """``interpreter.allocate_tensors()``, without LiteRT's one-off banner on stderr.

    The first allocation in a process makes the native runtime print "INFO: Created
    TensorFlow Lite XNNPACK delegate for CPU." on file descriptor 2, with no Python switch
    to turn it off (tensorflow/tensorflow#58050). That first allocation runs with fd 2
    pointed at the null device; every later one runs as is. Python-level errors are
    raised as exceptions, so nothing else is lost.
    """
    global _banner_silenced
    if _banner_silenced:
        interpreter.allocate_tensors()
        return
    with _banner_lock:
        if _banner_silenced:
            interpreter.allocate_tensors()
            return
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)
            interpreter.allocate_tensors()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        _banner_silenced = True


class LiteRTFunction:
    """One exported graph with one float32 input and one output, batched on axis 0.

    Parameters
    ----------
    path : str or Path
        A ``.tflite`` file.
    num_threads : int, optional
        CPU threads per interpreter (default: ``os.cpu_count()``).
    batch_size : int, default 16
        Rows per interpreter call (larger batches are split).
    """

    def __init__(self, path: str | Path, *, num_threads: int | None = None,
                 batch_size: int = 16) -> None:
        self.path = Path(path)
        self.num_threads = num_threads or os.cpu_count() or 1
        self.batch_size = batch_size
        self._local = threading.local()
        details = self._interpreter()[1]
        self.input_shape = tuple(int(s) for s in details["shape"][1:])

    def _interpreter(self) -> tuple[Any, dict[str, Any], int]:
        state = getattr(self._local, "state", None)
        if state is None:
            if not self.path.is_file():
                raise BackboneFileError(f"backbone file not found: {self.path}")
            from ai_edge_litert.interpreter import Interpreter

            try:
                interpreter = Interpreter(model_path=str(self.path),
                                          num_threads=self.num_threads)
            except (ValueError, RuntimeError) as exc:
                raise BackboneFileError(f"{self.path} is not a loadable LiteRT model "
                                        f"({exc})") from exc
            inputs = interpreter.get_input_details()
            outputs = interpreter.get_output_details()
            if len(inputs) != 1 or len(outputs) != 1:
                raise BackboneFileError(f"{self.path}: expected one input and one output")
            state = (interpreter, inputs[0], outputs[0]["index"])
            self._local.state = state
            self._local.batch = None
        interpreter, input_details, output_index = state
        return interpreter, input_details, output_index

    @property
    def weight_precision(self) -> str:
        """How the graph stores its weights: ``"float16"`` (widened when loaded) or float32."""
        interpreter = self._interpreter()[0]
        stored = {np.dtype(d["dtype"]) for d in interpreter.get_tensor_details()}
        return "float16" if np.dtype(np.float16) in stored else "float32"

    def __call__(self, batch: NDArray[np.floating]) -> NDArray[np.float32]:
        """Outputs for a batch, exactly as the exported Keras model returns them."""
        rows = np.ascontiguousarray(batch, dtype=np.float32)
        if rows.ndim != len(self.input_shape) + 1 or rows.shape[1:] != self.input_shape:
            raise ValueError(f"{self._what()} must have shape (N, "
                             f"{', '.join(map(str, self.input_shape))}), got {rows.shape}")
        parts = [self._run(rows[i : i + self.batch_size])
                 for i in range(0, len(rows), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def _what(self) -> str:
        return "inputs"

    def _run(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        interpreter, details, output_index = self._interpreter()
        if self._local.batch != len(batch):
            interpreter.resize_tensor_input(details["index"], list(batch.shape))
            _allocate(interpreter)
            self._local.batch = len(batch)
        interpreter.set_tensor(details["index"], batch)
        interpreter.invoke()
        return np.array(interpreter.get_tensor(output_index), copy=True)


class LiteRTBackbone(LiteRTFunction):
    """An exported backbone: patches (N, S, S, C) → [features ‖ quality ‖ weight] (N, F + 2).

    Parameters
    ----------
    path : str or Path
        The ``.tflite`` file written by :func:`backbones.export.export_litert`.
    num_threads : int, optional
        CPU threads per interpreter (default: ``os.cpu_count()``).
    batch_size : int, default 16
        Patches per interpreter call (larger batches are split).
    """

    def __init__(self, path: str | Path, *, num_threads: int | None = None,
                 batch_size: int = 16) -> None:
        super().__init__(path, num_threads=num_threads, batch_size=batch_size)
        if len(self.input_shape) != 3:
            raise BackboneFileError(f"{self.path}: not a patch backbone (input "
                                    f"{self.input_shape})")
        self.patch_size = self.input_shape[0]
        self.channels = self.input_shape[2]
        self.mode = "fr" if self.channels == 6 else "nr"

    def _what(self) -> str:
        return "patches"

    def image_vector(self, image_rgb: NDArray[np.float32],
                     reference_rgb: NDArray[np.float32] | None = None, *,
                     max_patches: int = 9) -> tuple[NDArray[np.float64], PatchGrid,
                                                    NDArray[np.float32]]:
        """Pooled image-level vector, the patch grid, and the per-patch qualities."""
        height, width = image_rgb.shape[:2]
        positions = grid_positions(height, width, size=self.patch_size,
                                   max_patches=max_patches)
        patches = take_patches(image_rgb, positions, size=self.patch_size)
        if self.mode == "fr":
            if reference_rgb is None:
                raise ValueError("this is a full-reference backbone: give a reference")
            patches = np.concatenate(
                [take_patches(reference_rgb, positions, size=self.patch_size), patches],
                axis=3)
        outputs = self(patches)
        features, quality, weight = outputs[:, :-2], outputs[:, -2], outputs[:, -1]
        grid = PatchGrid(positions, self.patch_size, (height, width))
        return pool_outputs(features, quality, weight), grid, quality


class SplitPairBackbone:
    """A full-reference backbone in two parts, reusing each reference's patch embeddings.

    ``trunk``: patches (N, S, S, 3) → embeddings (N, E), the siamese branch;
    ``head``: [reference embedding ‖ distorted embedding] (N, 2E) → [features ‖ quality ‖
    weight], the rest of the full-reference graph (see
    :func:`backbones.export.export_pair_parts`). Together they compute what the
    six-channel graph computes (tested to 1e-4). The embeddings of the last ``cache_size``
    references (keyed by a BLAKE2 digest of their pixels and the patch grid) are kept;
    comparing many images with one reference costs one trunk pass per patch instead of
    two. Thread-safe.
    """

    def __init__(self, trunk: str | Path, head: str | Path, *, num_threads: int | None = None,
                 cache_size: int = 64) -> None:
        self.trunk = LiteRTFunction(trunk, num_threads=num_threads)
        self.head = LiteRTFunction(head, num_threads=num_threads)
        if len(self.trunk.input_shape) != 3 or self.trunk.input_shape[2] != 3:
            raise BackboneFileError(f"{trunk}: not a patch trunk ({self.trunk.input_shape})")
        self.patch_size = self.trunk.input_shape[0]
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()
        self.trunk_passes = 0  # patches embedded, for measurements and tests

    def _embed(self, patches: NDArray[np.float32]) -> NDArray[np.float32]:
        self.trunk_passes += len(patches)
        return self.trunk(patches)

    def _reference_embedding(self, reference_rgb: NDArray[np.float32],
                             positions: NDArray[np.intp]) -> NDArray[np.float32]:
        digest = hashlib.blake2b(digest_size=16)
        digest.update(np.ascontiguousarray(reference_rgb).tobytes())
        digest.update(f"{reference_rgb.shape}".encode())
        digest.update(np.ascontiguousarray(positions).tobytes())
        key = digest.digest()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        embedding = self._embed(take_patches(reference_rgb, positions, size=self.patch_size))
        with self._lock:
            self._cache[key] = embedding
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return embedding

    def image_vector(self, image_rgb: NDArray[np.float32],
                     reference_rgb: NDArray[np.float32] | None = None, *,
                     max_patches: int = 9) -> tuple[NDArray[np.float64], PatchGrid,
                                                    NDArray[np.float32]]:
        """As :meth:`LiteRTBackbone.image_vector`, reusing the reference's embeddings."""
        if reference_rgb is None:
            raise ValueError("this is a full-reference backbone: give a reference")
        height, width = image_rgb.shape[:2]
        positions = grid_positions(height, width, size=self.patch_size,
                                   max_patches=max_patches)
        reference = self._reference_embedding(reference_rgb, positions)
        distorted = self._embed(take_patches(image_rgb, positions, size=self.patch_size))
        outputs = self.head(np.concatenate([reference, distorted], axis=1))
        features, quality, weight = outputs[:, :-2], outputs[:, -2], outputs[:, -1]
        grid = PatchGrid(positions, self.patch_size, (height, width))
        return pool_outputs(features, quality, weight), grid, quality
