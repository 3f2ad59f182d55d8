"""Sharding units across processes started by ``torchrun`` (torch.distributed; gloo on CPU, NCCL on CUDA).

``torchrun --nproc-per-node 8 -m deepforcing.cli --suite vbench-long`` starts 8 copies of the CLI; each reads
``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` from the environment, joins the process group, and takes every
``world_size``-th pending unit. Rank 0 decides what is pending (one completeness check) and broadcasts it;
every rank writes its own units' files (no shared file is appended to); rank 0 alone computes results, after a
barrier, from the files. Nothing a unit produces depends on the rank, so results do not depend on the world size.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a rank waits at a barrier for the others (generation of a shard can take hours).
TIMEOUT_ENV = "DEEPFORCING_DIST_TIMEOUT_S"


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job.

    Attributes:
        rank: Global rank (0 in a single process).
        world_size: Number of processes.
        local_rank: Rank on this node (selects the GPU).
        active: True when a process group was initialised.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    active: bool = False

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0

    def shard(self, items: list[T]) -> list[T]:
        """This rank's share: every ``world_size``-th item starting at ``rank``."""
        return items[self.rank :: self.world_size]

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_ok(self, ok: bool) -> bool:
        """True only if ``ok`` on every rank (a failed rank stops the others cleanly)."""
        if not self.active:
            return ok
        import torch.distributed as dist

        box: list[Any] = [None] * self.world_size
        dist.all_gather_object(box, bool(ok))
        return all(box)

    def close(self) -> None:
        """Leave the process group."""
        if self.active:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def env_world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the torchrun environment ((0, 1, 0) without it)."""
    return (
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


def init(device: str | None) -> tuple[DistContext, str]:
    """Join the torchrun process group if there is one and pick this rank's device.

    Args:
        device: ``cpu``, ``cuda`` or None (CUDA when available).

    Returns:
        The context and the device string for this rank (``cuda:<local_rank>`` under torchrun on GPUs).
    """
    import torch

    rank, world, local = env_world()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        from deepforcing.errors import UserError

        raise UserError("--device cuda was given but no CUDA device is available", "use --device cpu")
    if device == "cuda" and world > 1:
        device = f"cuda:{local}"
    if world <= 1:
        return DistContext(), device
    import torch.distributed as dist

    timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, 7 * 24 * 3600)))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", timeout=timeout, device_id=torch.device(device))
    else:
        dist.init_process_group("gloo", timeout=timeout)
    log.debug("rank %d of %d joined the process group (%s)", rank, world, dist.get_backend())
    return DistContext(rank, world, local, True), device
