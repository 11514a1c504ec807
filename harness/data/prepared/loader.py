"""Batches of raw clips from a prepared dataset, read from the memory map in index order.

Each batch holds only the frames it needs (up to the longest valid length in the batch), so the
whole split is never loaded. A background thread reads the next batch while the current one trains.

On a CUDA device the memory map is read straight into pinned (page-locked) host memory and copied
to the device on a side stream, asynchronously, while the current step runs; the consumer's stream
waits for that copy (an event, no host synchronisation) and the tensors are recorded on it so the
caching allocator never reuses them early. Augmentation then runs on the device (one batched call),
so no worker processes are needed.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .format import PreparedDataset


@dataclass
class Batch:
    x: torch.Tensor  # (B, 3, T_b, V, M) float32, frames [0, lengths[i]) valid, the rest zero
    lengths: torch.Tensor  # (B,) long
    labels: torch.Tensor  # (B,) long
    index: torch.Tensor  # (B,) long: positions in the dataset
    ready: Any = None  # CUDA: the event of the side-stream copy (ClipBatches waits on it before yielding)


def read_clips(ds: PreparedDataset, idx: np.ndarray, max_frames: int | None = None, *,
               empty: Callable[[tuple[int, ...]], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read samples `idx` (any order) → (clips (B, 3, T_b, V, M), lengths). One sorted memmap pass.

    ``empty(shape)`` allocates the float32 clip array (default ``np.empty``; pinned memory on CUDA).
    """
    idx = np.asarray(idx, dtype=np.int64)
    lengths = ds.lengths[idx]
    if max_frames is not None:
        lengths = np.minimum(lengths, max_frames)
    t_b = int(max(lengths.max(initial=1), 1))
    order = np.argsort(idx, kind="stable")
    shape = (len(idx), 3, t_b) + tuple(ds.data.shape[3:])
    clips = np.empty(shape, dtype=np.float32) if empty is None else empty(shape)
    clips[order] = ds.data[idx[order], :, :t_b]
    return clips, lengths


class ClipBatches:
    """Iterate over `indices` of a prepared dataset in batches (optionally shuffled per epoch)."""

    def __init__(self, ds: PreparedDataset, indices: np.ndarray, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False, device: torch.device | str = "cpu",
                 max_frames: int | None = None, prefetch: int = 2):
        self.ds, self.indices = ds, np.asarray(indices, dtype=np.int64)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_last, self.device = drop_last, torch.device(device)
        self.max_frames, self.prefetch = max_frames, prefetch
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> np.ndarray:
        if not self.shuffle:
            return self.indices
        rng = np.random.default_rng([self.seed, self.epoch])
        return self.indices[rng.permutation(len(self.indices))]

    def _chunks(self) -> Iterator[np.ndarray]:
        order = self.order()
        for start in range(0, len(self), 1):
            chunk = order[start * self.batch_size:(start + 1) * self.batch_size]
            if len(chunk):
                yield chunk

    def _load(self, chunk: np.ndarray) -> Batch:
        if self.device.type == "cuda":
            return self._load_cuda(chunk)
        clips, lengths = read_clips(self.ds, chunk, self.max_frames)
        labels = self.ds.labels[chunk]
        return Batch(torch.from_numpy(clips).to(self.device), torch.from_numpy(lengths).to(self.device),
                     torch.from_numpy(labels).to(self.device), torch.from_numpy(chunk).to(self.device))

    def _load_cuda(self, chunk: np.ndarray) -> Batch:
        """Read into pinned memory, copy on a side stream; the event marks the copies' end."""
        pinned: list[torch.Tensor] = []

        def empty(shape: tuple[int, ...]) -> np.ndarray:
            # page-locked, from torch's caching host allocator (reused across batches once the copy
            # that reads it is done: the copy below must read this tensor, not a from_numpy alias)
            pinned.append(torch.empty(shape, dtype=torch.float32, pin_memory=True))
            return pinned[-1].numpy()

        _, lengths = read_clips(self.ds, chunk, self.max_frames, empty=empty)
        host = [pinned[0]]
        for arr in (lengths, self.ds.labels[chunk], chunk):
            small = torch.empty(len(arr), dtype=torch.long, pin_memory=True)
            small.numpy()[:] = arr
            host.append(small)
        stream = getattr(self, "_copy_stream", None)
        if stream is None:
            stream = self._copy_stream = torch.cuda.Stream(self.device)
        with torch.cuda.stream(stream):
            x, lengths_d, labels_d, index_d = (t.to(self.device, non_blocking=True) for t in host)
            ready = torch.cuda.Event()
            ready.record(stream)
        return Batch(x, lengths_d, labels_d, index_d, ready=ready)

    def _handover(self, batch: Batch) -> Batch:
        """Make the consumer's stream wait for a side-stream copy (no host sync) and own its tensors."""
        if batch.ready is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(batch.ready)
            for t in (batch.x, batch.lengths, batch.labels, batch.index):
                t.record_stream(current)
            batch.ready = None
        return batch

    def __iter__(self) -> Iterator[Batch]:
        if self.prefetch <= 0:
            for chunk in self._chunks():
                yield self._handover(self._load(chunk))
            return
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def worker() -> None:
            try:
                for chunk in self._chunks():
                    if stop.is_set():
                        return
                    q.put(self._load(chunk))
                q.put(None)
            except BaseException as exc:  # surfaced in the consumer
                q.put(exc)

        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield self._handover(item)
        finally:
            stop.set()
            while thread.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.05)
