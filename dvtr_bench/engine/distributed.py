"""torch.distributed for training and evaluation: process group set-up, gathers with and without gradient.

Launch with torchrun (``python -m torch.distributed.run --nproc_per_node N -m dvtr_bench.cli run-baseline ...``):
the env:// variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) are read here. gloo on CPU,
nccl on CUDA. A single process without those variables runs with world size 1 and no process group.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from dvtr_bench.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> a torch.device; under torchrun 'cuda' means cuda:LOCAL_RANK."""
    device = (device or "auto").strip().lower()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
        if device == "cuda":
            return torch.device("cuda", local_rank)
        try:
            idx = int(device.split(":", 1)[1])
        except (IndexError, ValueError):
            raise ConfigError(f"--device {device}: expected cuda or cuda:N") from None
        if idx >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) visible")
        return torch.device("cuda", idx)
    if device != "cpu":
        raise ConfigError(f"--device {device}: expected auto, cpu, cuda or cuda:N")
    return torch.device("cpu")


def init(device: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun; return (info, this process's device)."""
    if not launched_by_torchrun():
        return DistInfo(), resolve_device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend, init_method="env://", timeout=datetime.timedelta(minutes=30))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, backend), dev


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward hands each rank the gradient of its own slice.

    Every rank computes the same loss over the gathered batch, so the gradient of that loss w.r.t. a rank's
    local embeddings is its slice of the incoming gradient; the other slices belong to other ranks' graphs.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        rank, ws = world()
        ctx.rank, ctx.n = rank, x.shape[0]
        parts = [torch.empty_like(x) for _ in range(ws)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n].contiguous()


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's equally sized batch along dim 0, keeping the gradient for the local part."""
    if world()[1] == 1:
        return x
    return _GatherWithGrad.apply(x)


def gather_embedding(emb: dict[str, torch.Tensor], with_grad: bool = True) -> dict[str, torch.Tensor]:
    """Gather every tensor of a batch-first Embedding (equal batch sizes on all ranks)."""
    if world()[1] == 1:
        return emb
    return {k: gather_with_grad(v) if with_grad and v.is_floating_point() else gather_uneven(v)
            for k, v in emb.items()}


def gather_uneven(x: torch.Tensor) -> torch.Tensor:
    """all_gather of batch-first tensors whose batch sizes differ across ranks (evaluation shards)."""
    rank, ws = world()
    if ws == 1:
        return x
    if x.dtype == torch.bool:
        # gloo has no bool all_gather
        return gather_uneven(x.to(torch.uint8)).bool()
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(ws)]
    dist.all_gather(sizes, n)
    counts = [int(s.item()) for s in sizes]
    m = max(counts)
    pad = x.new_zeros((m - x.shape[0],) + tuple(x.shape[1:]))
    parts = [x.new_empty((m,) + tuple(x.shape[1:])) for _ in range(ws)]
    dist.all_gather(parts, torch.cat([x, pad], dim=0).contiguous())
    return torch.cat([p[:c] for p, c in zip(parts, counts)], dim=0)


def broadcast_object(obj: object, src: int = 0) -> object:
    if world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    _, ws = world()
    if ws == 1:
        return x
    y = x.detach().clone()
    dist.all_reduce(y)
    return y / ws
