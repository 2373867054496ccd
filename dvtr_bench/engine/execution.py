"""How a run executes, apart from what it computes: precision, memory format, compilation.

These are options of the run (``TrainConfig`` fields, recorded with it), off by default: bf16 autocast on CPU and
CUDA, channels-last input to the image tower, and ``torch.compile`` of the image tower. fp16 autocast with a
gradient scaler stays what ``amp`` means on CUDA.
"""

from __future__ import annotations

from typing import Any

import torch

PRECISIONS = ("float32", "float16", "bfloat16")


def run_precision(device: torch.device, amp: bool | None, bf16: bool) -> str:
    """The autocast precision of a run: bf16 when asked (CPU or CUDA), else fp16 with ``amp`` on CUDA, else fp32."""
    if bf16:
        return "bfloat16"
    use_amp = (device.type == "cuda") if amp is None else bool(amp and device.type == "cuda")
    return "float16" if use_amp else "float32"


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision name (None: no autocast)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS} (got {precision!r})")
    return {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}[precision]


def autocast(device: torch.device, precision: str) -> Any:
    """``torch.autocast`` for ``precision`` on ``device`` (a disabled one for float32)."""
    dtype = autocast_dtype(precision)
    return torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def apply_model_options(method: Any, channels_last: bool = False, compile: bool = False) -> dict[str, Any]:
    """Apply the execution options to ``method``'s image tower, in place; returns what was applied.

    ``channels_last``: the tower's weights and every frame batch it receives use the channels-last memory format.
    ``compile``: ``nn.Module.compile`` on the image tower (in place, so state-dict keys and checkpoints are
    unchanged). Applying an option twice is harmless.
    """
    backbone = method.backbone
    visual = getattr(getattr(backbone, "model", None), "visual", None)
    if visual is None and (channels_last or compile):
        raise ValueError(f"{type(backbone).__name__} has no image tower (model.visual) to apply options to")
    if channels_last:
        visual.to(memory_format=torch.channels_last)
        backbone.channels_last = True
    if compile and not getattr(backbone, "compiled", False):
        visual.compile(dynamic=True)
        backbone.compiled = True
    return {"channels_last": bool(channels_last), "compile": bool(compile)}
