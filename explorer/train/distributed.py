"""Several processes, GPUs or machines through PyTorch's own launcher: under ``torchrun`` (its
RANK / WORLD_SIZE / LOCAL_RANK environment) a command joins the process group — nccl on CUDA,
gloo on the CPU — and each process takes its share of the data; alone, it is a group of one.

Evaluation shards exactly (``shard``: image i goes to process i mod world, no padding, so no image
is counted twice and the totals equal the folder's size); training uses torch's
``DistributedSampler`` (its padding repeats a few images per epoch, which training tolerates).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from explorer.core.devices import resolve_device
from explorer.core.errors import UserFacingError


@dataclass(frozen=True)
class Group:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Summed over the processes, in place (a no-op alone)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def join(device_spec: str | None) -> Group:
    """This process's place: alone, or one of torchrun's (the group is joined here). Under
    torchrun with CUDA each process takes the GPU of its LOCAL_RANK."""
    if not launched_by_torchrun():
        return Group(0, 1, 0, resolve_device(device_spec))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = resolve_device(device_spec)
    if device.type == "cuda":
        if (device_spec or "auto") not in ("auto", "cuda"):
            raise UserFacingError(f"--device {device_spec}: under torchrun each process uses cuda:LOCAL_RANK; "
                                  "give --device cuda (or auto).",
                                  f"--device {device_spec}：在 torchrun 下每个进程使用 cuda:LOCAL_RANK；请用 --device cuda（或 auto）。")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if device.type == "mps":  # gloo reduces CPU tensors only, and MPS has one device per machine
        raise UserFacingError("Under torchrun use CUDA (nccl) or the CPU (gloo): MPS cannot be shared by processes.",
                              "在 torchrun 下请使用 CUDA（nccl）或 CPU（gloo）：MPS 不能由多个进程共享。")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Group(rank, world, local_rank, device)


def leave(group: Group) -> None:
    if group.distributed and dist.is_initialized():
        dist.destroy_process_group()


def default_workers() -> int:
    """Data-loading processes per process: one core left for the model's own threads."""
    return min(8, max(1, (os.cpu_count() or 2) - 1))


def shard(count: int, group: Group) -> list[int]:
    """This process's indices of ``count`` items: every world-th, from its rank (no padding)."""
    return list(range(group.rank, count, group.world))
