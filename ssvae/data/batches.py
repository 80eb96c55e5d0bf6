"""Batching in-memory tensors by index: one gather per batch, no per-item Python work."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class TensorBatches:
    """An iterable of batches drawn from tensors that share their first dimension.

    Each ``iter()`` starts a new epoch with a fresh permutation (when ``shuffle``) from its own
    seeded generator, so the order is reproducible for a seed. Under DDP every process takes its
    own interleaved shard, so Lightning needs no distributed sampler for it; with ``even_shards``
    (training) the order wraps around so that every process runs the same number of steps, as
    gradient synchronisation requires. Evaluation leaves it off so that no image counts twice.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        even_shards: bool = False,
    ) -> None:
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("TensorBatches needs tensors with the same first dimension")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.even_shards = even_shards
        self.generator = torch.Generator().manual_seed(seed)

    def _num_local(self) -> int:
        rank, world = _rank_and_world()
        n = len(self.tensors[0])
        return -(-n // world) if self.even_shards else len(range(rank, n, world))

    def __len__(self) -> int:
        n = self._num_local()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor | tuple[torch.Tensor, ...]]:
        n = len(self.tensors[0])
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        rank, world = _rank_and_world()
        if self.even_shards and n % world:
            order = torch.cat([order, order[: world - n % world]])
        order = order[rank::world]
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            # The order lives on the CPU (its generator does); the data may live on a GPU.
            idx = order[start : start + self.batch_size].to(self.tensors[0].device)
            batch = tuple(t[idx] for t in self.tensors)
            yield batch[0] if len(batch) == 1 else batch
