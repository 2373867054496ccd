"""The TensorBoard log of a training run: losses and learning rates per optimiser step, validation per epoch.

Written by the trainer's main process into ``<run>/seed<S>/tensorboard/`` (``tensorboard --logdir runs/`` shows
every run and seed side by side). The x axis is the optimiser step, so epochs of different lengths and resumed
runs line up. Scalars:

* ``train/loss`` and each named term of the method's loss (``train/infonce``, ``train/kl``, ...): the mean over
  the step's micro-batches;
* ``lr/<group>``: the learning rate of each parameter group kind (``backbone``, ``new``) after the step;
* ``epoch/loss``: the epoch's mean training loss; ``val/<metric>``: every validation metric of the epoch, at the
  epoch's last step; ``val/selected``: 1 when that epoch became the selected checkpoint.

A resumed run reopens the log with ``purge_step`` at its resume point, so the steps an interrupted epoch had
logged before the kill are discarded by TensorBoard instead of appearing twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from dvtr_bench.errors import ConfigError

LOG_DIR = "tensorboard"


def tensorboard_available() -> bool:
    """Whether the optional ``tensorboard`` package (``pip install 'dvtr-bench[tensorboard]'``) is installed."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class TrainLog:
    """A run's TensorBoard writer, or nothing when logging is off (``write`` False)."""

    def __init__(self, run_dir: str | Path, mode: bool | str, purge_step: int | None = None, write: bool = True):
        """``mode``: ``"auto"`` logs when the tensorboard package is installed, True requires it, False is off.

        Raises:
            ConfigError: ``mode`` True without the package, or a mode that is none of those.
        """
        if mode not in (True, False, "auto"):
            raise ConfigError(f"tensorboard must be true, false or \"auto\" (got {mode!r})")
        available = tensorboard_available()
        if mode is True and not available:
            raise ConfigError("tensorboard logging needs the tensorboard package: pip install "
                              "'dvtr-bench[tensorboard]' (or set train.tensorboard to false)")
        self.enabled = bool(write and mode is not False and available)
        self.log_dir = Path(run_dir) / LOG_DIR
        self._writer: Any = None
        if self.enabled:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.log_dir), purge_step=purge_step)

    def step(self, step: int, terms: Mapping[str, float], param_groups: list[dict[str, Any]]) -> None:
        """One optimiser step: the loss terms (already averaged over the micro-batches) and the learning rates."""
        if self._writer is None:
            return
        for name, value in terms.items():
            self._writer.add_scalar(f"train/{name}", float(value), step)
        seen = set()
        for g in param_groups:
            kind = str(g.get("name", "new")).split("/")[0]
            if kind not in seen:  # groups of one kind (decayed or not) share their learning rate
                seen.add(kind)
                self._writer.add_scalar(f"lr/{kind}", float(g["lr"]), step)

    def epoch(self, step: int, loss: float, val: Mapping[str, float], selected: bool) -> None:
        """An epoch's end: its mean loss, every validation metric, whether it is the selected checkpoint now."""
        if self._writer is None:
            return
        self._writer.add_scalar("epoch/loss", float(loss), step)
        for name, value in val.items():
            self._writer.add_scalar(f"val/{name}", float(value), step)
        self._writer.add_scalar("val/selected", 1.0 if selected else 0.0, step)
        self._writer.flush()  # an epoch's figures are on disk before the next one starts (kills, live viewing)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
