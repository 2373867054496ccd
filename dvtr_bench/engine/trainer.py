"""The trainer: fine-tune a retrieval method on a split, select the checkpoint on validation only.

An epoch visits every (caption, clip) pair of the train split once, as the releases do; one optimisation step
is one global batch of pairs in which no clip and no caption text appears twice (:func:`epoch_plan`).
Under torch.distributed the global batch is split over the ranks, embeddings are all-gathered (with gradient
for the local part) and every rank computes the loss of the whole global batch, so N processes follow the
same trajectory as one process holding the whole batch (up to float reduction order). No random draw depends on
the rank: the encoders are deterministic (a method's contract), the loss -- where the methods' dropout lives --
draws from a generator seeded by (seed, epoch, step) on every rank, and augmentation draws are seeded per slot of
the global batch, so each clip gets the same crop whichever process loads it.

Resuming: ``last.pt`` is written after every epoch with model, optimiser, scheduler, scaler and RNG states,
the epoch, the best validation score and the history. Data order and dropout depend only on (seed, epoch, step), so
a run stopped after epoch k and re-run reaches the same weights as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dvtr_bench.errors import ConfigError
from dvtr_bench.progress import Progress, ProgressFn
from dvtr_bench.provenance import config_hash
from dvtr_bench.engine import checkpoint as ckpt
from dvtr_bench.engine import distributed as D
from dvtr_bench.engine.data import FRAME_TRANSFORMS, LOADERS, Captions, FrameSource, choose_frame_path, epoch_plan
from dvtr_bench.engine.execution import apply_model_options, autocast, autocast_dtype, run_precision
from dvtr_bench.engine.optim import build_optimizer, build_scheduler
from dvtr_bench.models.base import select_text, text_to
from dvtr_bench.models.common import uses_backbone_text
from dvtr_bench.text import CaptionCorpus


FEATURE_CACHE_MODES = ("auto", "on", "off")


@dataclass
class TrainConfig:
    """Training options. The defaults are the ``uniform`` regime (:data:`dvtr_bench.engine.regimes.UNIFORM`);
    a recipe's "train" section (the ``release`` regime of its method) or the uniform one overrides them."""

    regime: str = "uniform"               # "release" or "uniform" (recorded; docs/protocol.md, "Training regimes")
    epochs: int = 5
    batch_size: int = 128                 # global batch of (caption, clip) pairs, summed over processes
    lr: float = 1e-4                      # new modules
    backbone_lr: float = 1e-6             # pretrained backbone
    optimizer: str = "adamw"              # adamw | bertadam | hf_adamw (dvtr_bench.engine.optim)
    fp16_backbone: bool = False           # bertadam: update CLIP's convert_weights parameters in fp16
    weight_decay: float = 0.2
    decay: str = "matrices"               # which parameters are decayed: matrices | no_decay_bias | all
    warmup: float = 0.1                   # fraction of optimiser steps with linear warmup
    schedule: str = "warmup_cosine"       # warmup_cosine (transformers, X-Pool) | bert_warmup_cosine (CLIP4Clip)
    grad_clip: float = 1.0                # max global grad norm; 0 disables
    param_clip: float = 0.0               # bertadam: max grad norm of each parameter on its own; 0 disables
    accum_steps: int = 1                  # micro-batches per optimiser step
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    loss_group: int | None = None         # pairs per InfoNCE loss (None: the whole global batch)
    augment: str = "none"                 # none | xpool (RandomResizedCrop 0.5-1 + horizontal flip)
    amp: bool | None = None               # mixed precision; None = on for CUDA, off on CPU
    eval_batch_size: int = 32
    text_batch_size: int = 256
    num_workers: int = 2                  # frame-decoding threads (or worker processes, see loader)
    loader: str = "threads"               # threads | processes: how frames are decoded (docs/data-path.md)
    frame_cache: bool | str = "auto"
    select_metric: str = "rsum"           # validation metric that picks the checkpoint (higher is better)
    select_ties: str = "earlier"          # on an equal score keep the earlier epoch, or take the "later" one
    freeze_backbone: bool = False         # train new modules (+ logit scale) only; backbone encoders not optimised
    feature_cache: str = "auto"           # auto | on | off: frozen backbone -> frame features encoded once
    feature_cache_dir: str | None = None  # folder of cached frame features shared by runs (None: in memory)
    frame_transform: str = "auto"         # auto | workers | device: where the FrameSpec runs (docs/data-path.md)
    gpu_decode: bool = False              # CUDA: decode the stored JPEG frames on the GPU (nvjpeg, batched)
    bf16: bool = False                    # bfloat16 autocast for training and evaluation, on CPU and CUDA
    channels_last: bool = False           # channels-last memory format for the image tower and its input
    compile: bool = False                 # torch.compile the image tower
    tensorboard: bool | str = "auto"      # TensorBoard log in seed<S>/tensorboard: "auto" = when installed

    KNOWN_ALIASES = {"warmup_proportion": "warmup", "max_grad_norm": "grad_clip", "batch": "batch_size",
                     "gradient_accumulation_steps": "accum_steps", "workers": "num_workers"}

    @classmethod
    def known_keys(cls) -> tuple[str, ...]:
        """Every key a recipe's "train" section may hold: the fields, their aliases and ``coef_lr``."""
        return (*(f.name for f in dataclasses.fields(cls)), *cls.KNOWN_ALIASES, "coef_lr")

    @classmethod
    def from_dict(cls, d: dict[str, Any], strict: bool = True, where: str = "train") -> "TrainConfig":
        """Build from a recipe's "train" section; ``coef_lr`` (CLIP4Clip) sets backbone_lr = lr x coef_lr.

        ``strict``: an unknown key is a :class:`ConfigError` with the closest known one (``where`` names the
        section in the message); each value must have its field's type (an int where a float is expected is fine).
        """
        from dvtr_bench.models.registry import TRAIN_KEY_SYNONYMS, check_keys

        if strict:
            check_keys(d or {}, cls.known_keys(), where, synonyms=TRAIN_KEY_SYNONYMS)
        names = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        coef = None
        for k, v in (d or {}).items():
            k = cls.KNOWN_ALIASES.get(k, k)
            if k == "coef_lr":
                coef = _typed(v, "float", f"{where}: coef_lr")
            elif k in names:
                v = _typed(v, str(names[k].type), f"{where}: {k}")
                kwargs[k] = tuple(v) if k == "betas" else v
        cfg = cls(**kwargs)
        if coef is not None and "backbone_lr" not in kwargs:
            cfg.backbone_lr = cfg.lr * coef
        cfg.validate()
        return cfg

    def validate(self) -> None:
        from dvtr_bench.engine.optim import DECAY_RULES, OPTIMIZERS, SCHEDULES
        from dvtr_bench.engine.regimes import REGIMES

        for name in ("epochs", "batch_size", "accum_steps", "eval_batch_size", "text_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0 (got {self.num_workers})")
        if not 0.0 <= self.warmup < 1.0:
            raise ConfigError(f"warmup must be a fraction in [0, 1) (got {self.warmup})")
        for name, value, known in (("regime", self.regime, REGIMES), ("optimizer", self.optimizer, OPTIMIZERS),
                                   ("decay", self.decay, DECAY_RULES), ("schedule", self.schedule, tuple(SCHEDULES)),
                                   ("augment", self.augment, ("none", "xpool")),
                                   ("select_ties", self.select_ties, ("earlier", "later")),
                                   ("feature_cache", self.feature_cache, FEATURE_CACHE_MODES)):
            if value not in known:
                raise ConfigError(f"{name} {value!r} is not supported (known: {', '.join(known)})")
        if self.fp16_backbone and self.optimizer != "bertadam":
            raise ConfigError("fp16_backbone needs optimizer bertadam (the CLIP4Clip/MSAM release update)")
        if self.loss_group is not None and int(self.loss_group) < 1:
            raise ConfigError(f"loss_group must be >= 1 or null (got {self.loss_group})")
        for name in ("freeze_backbone", "gpu_decode", "bf16", "channels_last", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false (got {getattr(self, name)!r})")
        if self.loader not in LOADERS:
            raise ConfigError(f"loader {self.loader!r} is not supported (known: {', '.join(LOADERS)})")
        if self.frame_transform not in FRAME_TRANSFORMS:
            raise ConfigError(f"frame_transform {self.frame_transform!r} is not supported "
                              f"(known: {', '.join(FRAME_TRANSFORMS)})")
        if self.gpu_decode and self.frame_transform == "workers":
            raise ConfigError("gpu_decode decodes on the GPU, so the FrameSpec cannot run in the loader workers: "
                              "use frame_transform auto or device")
        if self.bf16 and self.amp:
            raise ConfigError("bf16 and amp (fp16 autocast) exclude each other: choose one")
        if self.bf16 and self.fp16_backbone:
            raise ConfigError("bf16 cannot be combined with fp16_backbone")
        if self.feature_cache == "on" and not self.freeze_backbone:
            raise ConfigError("feature_cache 'on' needs freeze_backbone: a backbone that trains changes the "
                              "frame features every step")
        if self.feature_cache == "on" and self.augment != "none":
            raise ConfigError(f"feature_cache 'on' cannot be combined with augment {self.augment!r}: augmentation "
                              "draws new pixels every epoch, so there is nothing to cache")
        if self.tensorboard not in (True, False, "auto"):
            raise ConfigError(f"tensorboard must be true, false or \"auto\" (got {self.tensorboard!r})")
        if self.lr <= 0 or self.backbone_lr < 0:
            raise ConfigError(f"learning rates must be positive (lr={self.lr}, backbone_lr={self.backbone_lr})")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d


def _typed(value: Any, annotation: str, where: str) -> Any:
    """``value`` checked against a field's annotation (``int``, ``float``, ``bool | None``, ``tuple[...]``, ...).

    JSON and ``--set`` give ints for floats (``1`` for ``1.0``), so an int passes as a float, as a float; a bool is
    never taken for a number, and a string never for anything but a string.
    """
    kinds = [a.strip() for a in annotation.split("|")]
    if value is None and "None" in kinds:
        return None
    for kind in kinds:
        if kind == "bool" and isinstance(value, bool):
            return value
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind == "str" and isinstance(value, str):
            return value
        if kind.startswith("tuple[") and isinstance(value, (list, tuple)):
            n = len(kind[len("tuple["):-1].split(","))
            if len(value) == n and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
                return [float(x) for x in value]
        if kind == "Any":
            return value
    names = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
             "None": "null"}
    want = " or ".join(names.get(k, "a list of " + str(len(k.split(","))) + " numbers") for k in kinds)
    raise ConfigError(f"{where} must be {want} (got {json.dumps(value, default=str)})")


@dataclass
class TrainResult:
    best_epoch: int                       # 0-based epoch whose weights were selected on validation
    best_val: dict[str, float]
    history: list[dict[str, Any]]
    train_seconds: float                  # summed over interrupted sessions
    best_path: Path
    resumed_from_epoch: int | None = None
    steps: int = 0
    steps_per_epoch: list[int] = field(default_factory=list)   # optimiser steps of every epoch of the plan
    extra: dict[str, Any] = field(default_factory=dict)


class _Step(nn.Module):
    """One training forward: encode the local batch, gather across ranks, the method's loss on the global batch.

    With ``loss_group`` the global batch is cut into consecutive groups of that many pairs and the loss is the
    mean of the groups' losses: what a release that computes its loss on each device's share of the batch and
    averages gradients over devices optimises (CLIP4Clip's tightTransf: 32 pairs on each of 4 GPUs).

    A module of its own so that DistributedDataParallel wraps the whole computation (DDP only synchronises
    gradients of computations that go through the wrapped module's forward).

    ``loss_seed``: the loss runs on the gathered global batch on every rank, so its random draws (X-Pool's,
    MSAM's and tightTransf's dropout) come from a generator seeded alike on every rank: N processes then drop
    exactly what one process drops, and every rank's gradient is of the same loss. Forked, so the draws do not
    disturb the global stream.
    """

    def __init__(self, method: nn.Module, world_size: int, loss_group: int | None = None,
                 from_features: bool = False, cached_text: bool = False):
        super().__init__()
        self.method = method
        self.world_size = world_size
        self.loss_group = loss_group
        # frames are then cached frame_features output ([B, T, D]) and only the method's head runs on them
        self.from_features = from_features
        # tokens are then the text embeddings themselves, computed once by the frozen backbone
        self.cached_text = cached_text

    def forward(self, tokens: Any, frames: torch.Tensor, mask: torch.Tensor,
                loss_seed: int | None = None) -> dict[str, torch.Tensor]:
        text = tokens if self.cached_text else self.method.encode_text(tokens)
        if self.from_features:
            video = self.method.encode_video_features(frames, mask)
        else:
            video = self.method.encode_video(frames, mask)
        text = D.gather_embedding(text, with_grad=True)
        video = D.gather_embedding(video, with_grad=True)
        if loss_seed is None:
            return self._loss(text, video)
        devices = [frames.device.index or 0] if frames.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, device_type=frames.device.type):
            torch.manual_seed(loss_seed)
            return self._loss(text, video)

    def _loss(self, text: dict[str, torch.Tensor], video: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        n = int(next(iter(text.values())).shape[0])
        g = self.loss_group
        if not g or g >= n:
            return self.method.loss(text, video)
        from dvtr_bench.models.base import slice_embedding

        outs = [self.method.loss(slice_embedding(text, s, s + g), slice_embedding(video, s, s + g))
                for s in range(0, n, g)]
        return {k: torch.stack([o[k] for o in outs]).mean() for k in outs[0]}


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


_EPOCH, _LOSS, _AUGMENT = 0x5EED, 0x1055, 0xA06   # one stream of draws each


def _draw_seed(seed: int, epoch: int, *slot: int, stream: int = _EPOCH) -> int:
    # Every draw of training is a function of (seed, epoch, where in the plan), never of the rank or the world size.
    return int(np.random.SeedSequence([int(seed), int(epoch), *map(int, slot), stream]).generate_state(1)[0])


def _fingerprint(config: TrainConfig, method: nn.Module, n_train: int, n_val: int, seed: int, world: int) -> str:
    return config_hash({"train": {k: v for k, v in config.to_dict().items()
                                  if k not in ("num_workers", "frame_cache", "eval_batch_size", "text_batch_size",
                                               "feature_cache", "feature_cache_dir", "frame_transform",
                                               "gpu_decode", "channels_last", "compile", "tensorboard",
                                               "loader")},
                        "method": getattr(method, "name", type(method).__name__),
                        "method_config": getattr(method, "config", {}), "n_train": n_train, "n_val": n_val,
                        "seed": seed, "world_size": world})


def train(method: nn.Module, train_split: Any, val_split: Any, run_dir: str | Path, *, config: TrainConfig,
          seed: int, device: torch.device | str = "cpu", resume: bool = True,
          progress: ProgressFn | None = None, sources: dict[str, Any] | None = None) -> TrainResult:
    """Train ``method`` in place on ``train_split``; select the epoch on ``val_split``; load the best weights.

    ``run_dir`` receives ``last.pt`` (every epoch), ``best.pt`` (weights of the best validation epoch) and
    ``history.jsonl``. With ``resume`` and an existing ``last.pt`` of the same configuration, training continues
    after its epoch. The test split is not an argument: the trainer cannot see it. ``sources`` may hold
    FrameSources of "train" / "validation" decoded earlier for the same FrameSpec (reused across seeds); the
    trainer also keeps the splits' fingerprints and cached frame features there.

    With ``config.freeze_backbone`` the backbone's parameters are left out of the optimiser and it runs in eval
    mode; then (``feature_cache`` "auto" or "on", no augmentation, a method with the frame-feature hook) every
    clip's frame features are computed once (:mod:`dvtr_bench.engine.features`) and only the head trains.
    """
    from dvtr_bench.engine.evaluate import evaluate

    config.validate()
    device = torch.device(device)
    run_dir = Path(run_dir)
    rank, world = D.world()
    is_main = rank == 0
    precision = run_precision(device, config.amp, config.bf16)
    amp = precision == "float16"  # fp16 needs the gradient scaler; bf16 has float32's range and does not
    frame_device, decode_device = choose_frame_path(device, config.frame_transform, config.gpu_decode)

    tr_caps = Captions.from_split(train_split, name="train")
    va_caps = Captions.from_split(val_split, name="validation")
    # The caption-corpus hook runs before the move to the device and the optimiser: a method may create buffers
    # and modules from the training captions there.
    corpus = CaptionCorpus(tuple(tr_caps.texts), tr_caps.caption_to_clip, tuple(tr_caps.clip_ids),
                           fingerprint=getattr(train_split, "_fingerprint", None))
    method.prepare_text(corpus)
    method.to(device)
    if config.freeze_backbone:
        from dvtr_bench.engine.features import is_temperature

        # The logit scale stays trainable: it is the loss temperature (the only parameter meanP has), not part of
        # the encoders, and the frame features do not depend on it.
        for pname, p in method.backbone.named_parameters():
            if not is_temperature(pname):
                p.requires_grad_(False)
    use_features = _use_feature_cache(config, method)
    apply_model_options(method, channels_last=config.channels_last, compile=config.compile)
    n_train = tr_caps.n_clips - tr_caps.n_uncaptioned  # a clip without captions is never drawn
    if n_train == 0:
        raise ConfigError("the train split has no captioned clip: nothing to train on")
    # A batch holds distinct clips, so it cannot be larger than the number of captioned clips.
    batch = min(config.batch_size, n_train)
    if batch < world:
        raise ConfigError(f"global batch {batch} is smaller than the number of processes ({world})")
    per_rank = batch // world
    batch = per_rank * world
    # The plans are cheap to draw and fix the schedule's length, so every epoch's step count is known first.
    micro_per_epoch = [len(epoch_plan(tr_caps, seed, e, batch)) for e in range(config.epochs)]
    steps_per_epoch = [math.ceil(m / config.accum_steps) for m in micro_per_epoch]
    total_steps = sum(steps_per_epoch)
    if total_steps == 0:
        raise ConfigError(f"no full batch of {batch} pairs with distinct clips and distinct caption texts can be "
                          "formed from the train split; use a smaller --batch-size")

    tr_tokens = method.tokenize_corpus(corpus)
    va_tokens = method.tokenize(va_caps.texts)
    sources = sources if sources is not None else {}
    for name, split in (("train", train_split), ("validation", val_split)):
        src = sources.get(name)
        # Augmentation crops the stored frames before the FrameSpec, so it needs them undecoded-from-spec.
        raw = name == "train" and config.augment != "none"
        if (src is None or src.spec != method.frame_spec or len(src) != len(split)
                or (raw and src.mode == "prepared") or src.frame_device != frame_device
                or src.decode_device != decode_device or src.loader != config.loader):
            # Cached features read the frames at most once: streaming them avoids holding a decoded copy.
            sources[name] = FrameSource(split, method.frame_spec, num_workers=config.num_workers,
                                        cache="stream" if use_features else config.frame_cache, name=name,
                                        raw_only=raw, progress=progress if is_main else None,
                                        frame_device=frame_device, decode_device=decode_device,
                                        loader=config.loader)
    tr_src, va_src = sources["train"], sources["validation"]
    features: dict[str, Any] = {}
    if use_features:
        from dvtr_bench.engine.features import frame_features_for
        from dvtr_bench.protocol.fingerprint import dataset_fingerprint

        for name, split, src in (("train", train_split, tr_src), ("validation", val_split, va_src)):
            fp_key = f"fingerprint:{name}"
            if fp_key not in sources:
                sources[fp_key] = dataset_fingerprint(split)
            features[name] = frame_features_for(
                method, src, sources[fp_key], device=device, batch_size=config.eval_batch_size,
                cache_dir=config.feature_cache_dir, precision=precision, memo=sources.setdefault("features", {}),
                progress=progress if is_main else None, name=name)

    optimizer = build_optimizer(method, config.lr, config.backbone_lr, config.weight_decay, config.betas,
                                config.eps, optimizer=config.optimizer, decay=config.decay,
                                fp16_backbone=config.fp16_backbone, param_clip=config.param_clip)
    scheduler = build_scheduler(optimizer, total_steps, config.warmup, config.schedule)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    text_cache: dict[str, torch.Tensor] | None = None
    if use_features and uses_backbone_text(method):
        from dvtr_bench.engine.evaluate import encode_captions

        # The method's text embedding is the frozen backbone's sentence embedding: a constant of each caption.
        was_training = method.backbone.training
        method.backbone.eval()
        with autocast(device, precision):
            text_cache = encode_captions(method, tr_tokens, device, config.text_batch_size)
        method.backbone.train(was_training)
    step_module: nn.Module = _Step(method, world, config.loss_group, from_features=use_features,
                                   cached_text=text_cache is not None)
    augment = None
    if config.augment == "xpool":
        from dvtr_bench.engine.augment import XPoolTrainAugment

        augment = XPoolTrainAugment(method.frame_spec)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        step_module = DDP(step_module, device_ids=[device.index] if device.type == "cuda" else None,
                          find_unused_parameters=True)

    fp = _fingerprint(config, method, n_train, va_caps.n_clips, seed, world)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    start_epoch, best_score, best_epoch, best_val = 0, -math.inf, -1, {}
    history: list[dict[str, Any]] = []
    train_seconds, global_step, resumed = 0.0, 0, None
    if resume and last_path.exists():
        state = ckpt.load(last_path, map_location=device)
        if state.get("fingerprint") != fp:
            raise ConfigError(f"{last_path} was written by a different configuration; use another output "
                              "directory or delete it to start over")
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"][rank] if isinstance(state["rng"], list) else state["rng"])
        start_epoch = int(state["epoch"]) + 1
        best_score, best_epoch, best_val = state["best_score"], state["best_epoch"], state["best_val"]
        history, train_seconds, global_step = state["history"], state["train_seconds"], state["global_step"]
        resumed = start_epoch

    def report(task: str, **kw: Any) -> None:
        if progress is not None and is_main:
            progress(Progress(task=task, **kw))

    from dvtr_bench.engine.tblog import TrainLog

    # purge_step: what an interrupted epoch logged after the resume point is dropped, not shown twice
    tb = TrainLog(run_dir, config.tensorboard, purge_step=global_step if resumed is not None else None,
                  write=is_main)
    if resumed is not None:
        left = (f"training on from epoch {resumed + 1}" if resumed < config.epochs
                else "nothing left to train")
        report("resume", message=f"seed {seed}: resumed from epoch {resumed} of {config.epochs} ({last_path}); "
                                 f"{left}")
    report("epochs", completed=start_epoch, total=config.epochs,
           info={"steps/epoch": steps_per_epoch[0], "pairs": len(tr_caps.texts), "batch": batch})
    for epoch in range(start_epoch, config.epochs):
        t_epoch = time.perf_counter()
        torch.manual_seed(_draw_seed(seed, epoch))
        method.train()
        if config.freeze_backbone:
            method.backbone.eval()  # a frozen feature extractor: no dropout, whatever the head does
        plan = epoch_plan(tr_caps, seed, epoch, batch)
        local = [b[rank * per_rank:(rank + 1) * per_rank] for b in plan]
        clip_batches = [[c for c, _ in b] for b in local]
        losses: list[float] = []
        step_terms: list[dict[str, float]] = []   # the micro-batches' loss terms of the current optimiser step
        optimizer.zero_grad(set_to_none=True)
        # Each clip's augmentation draws come from a generator seeded by its slot in the global batch: resuming
        # replays them, and a clip is cropped alike whichever process loads it.
        aug_seeds = ([[_draw_seed(seed, epoch, i, rank * per_rank + k, stream=_AUGMENT) for k in range(len(b))]
                      for i, b in enumerate(local)] if augment else None)
        batches = (features["train"].batches(clip_batches) if use_features
                   else tr_src.batches(clip_batches, transform=augment, clip_seeds=aug_seeds))
        for i, (_, frames, mask) in enumerate(batches):
            cap_idx = torch.as_tensor([k for _, k in local[i]], dtype=torch.long)
            if text_cache is not None:
                tokens = {k: v[cap_idx.to(v.device)] for k, v in text_cache.items()}
            else:
                tokens = text_to(select_text(tr_tokens, cap_idx), device)
            frames = frames.to(device, non_blocking=True)
            mask = mask.to(device)
            last_micro = (i + 1) % config.accum_steps == 0 or i + 1 == len(local)
            sync = world > 1 and not last_micro
            ctx = step_module.no_sync() if sync else _null()  # type: ignore[operator]
            with ctx:
                with autocast(device, precision):
                    out = step_module(tokens, frames, mask, _draw_seed(seed, epoch, i, stream=_LOSS))
                loss = out["loss"]
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite training loss at epoch {epoch} step {i}")
                # DDP averages gradients over ranks while each rank's loss already covers the global batch:
                # scaling by the world size makes the step equal to one process's step on the whole batch.
                scaler.scale(loss * world / config.accum_steps).backward()
            losses.append(float(loss.detach()))
            step_terms.append({k: float(v.detach()) for k, v in out.items() if v.numel() == 1})
            if last_micro:
                if config.grad_clip and config.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(method.parameters(), config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                _clamp_logit_scale(method)
                global_step += 1
                tb.step(global_step, {k: float(np.mean([t[k] for t in step_terms])) for k in step_terms[0]},
                        optimizer.param_groups)
                step_terms = []
            report("train", completed=i + 1, total=len(local),
                   info={"epoch": f"{epoch + 1}/{config.epochs}", "loss": float(np.mean(losses[-10:]))})
        epoch_train_s = time.perf_counter() - t_epoch
        train_seconds += epoch_train_s
        # Validation: the only split that chooses the checkpoint.
        val = evaluate(method, val_split, device=device, split_name="validation",
                       batch_size=config.eval_batch_size, text_batch_size=config.text_batch_size,
                       source=va_src, captions=va_caps, tokens=va_tokens,
                       autocast=autocast_dtype(precision) or False,
                       features=features.get("validation"), progress=progress)
        if config.select_metric not in val.metrics:
            raise ConfigError(f"select_metric {config.select_metric!r} is not a metric "
                              f"(have {sorted(val.metrics)})")
        score = float(val.metrics[config.select_metric])
        # CLIP4Clip and MSAM keep the later epoch on a tie (best_score <= R1); X-Pool the earlier one.
        improved = score > best_score or (config.select_ties == "later" and score == best_score)
        entry = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else float("nan"),
                 "lr": [g["lr"] for g in optimizer.param_groups], "train_seconds": epoch_train_s,
                 "steps": global_step, "steps_in_epoch": steps_per_epoch[epoch], "batch": batch,
                 "pairs": len(tr_caps.texts), "pairs_sitting_out": len(tr_caps.texts) - len(plan) * batch,
                 "val": val.metrics, "selected": improved}
        history.append(entry)
        tb.epoch(global_step, entry["loss"], val.metrics, improved)
        if improved:
            best_score, best_epoch, best_val = score, epoch, dict(val.metrics)
        rngs = _gather_rng(world)
        if is_main:
            if improved:
                # The method's name lets `dvtr evaluate` refuse a checkpoint put in another method's run.
                ckpt.save_atomic({"model": method.state_dict(), "epoch": epoch, "val": val.metrics,
                                  "method": getattr(method, "name", type(method).__name__)}, best_path)
            ckpt.save_atomic({
                "fingerprint": fp, "epoch": epoch, "model": method.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(), "rng": rngs, "best_score": best_score, "best_epoch": best_epoch,
                "best_val": best_val, "history": history, "train_seconds": train_seconds,
                "global_step": global_step, "config": config.to_dict(), "seed": seed}, last_path)
            with open(run_dir / "history.jsonl", "w", encoding="utf-8") as f:
                for h in history:
                    f.write(json.dumps(h) + "\n")
        D.barrier()
        report("epochs", completed=epoch + 1, total=config.epochs,
               info={"val " + config.select_metric: score, "best epoch": best_epoch + 1})

    tb.close()
    if best_epoch < 0:
        raise ConfigError("no epoch was trained (epochs = 0?)")
    D.barrier()
    state = ckpt.load(best_path, map_location=device)
    method.load_state_dict(state["model"])
    method.eval()
    return TrainResult(best_epoch=best_epoch, best_val=best_val, history=history, train_seconds=train_seconds,
                       best_path=best_path, resumed_from_epoch=resumed, steps=global_step,
                       steps_per_epoch=steps_per_epoch,
                       extra={"backbone_frozen": bool(config.freeze_backbone), "precision": precision,
                              "data_path": tr_src.path,
                              "frame_features": {k: f.origin for k, f in features.items()} or None,
                              "text_embeddings_cached": text_cache is not None})


def _use_feature_cache(config: TrainConfig, method: nn.Module) -> bool:
    """Whether this run trains from cached frame features (see TrainConfig.feature_cache)."""
    from dvtr_bench.models.common import uses_frame_features

    if config.feature_cache == "off" or not config.freeze_backbone or config.augment != "none":
        return False
    if not uses_frame_features(method):
        if config.feature_cache == "on":
            raise ConfigError(f"feature_cache 'on': method {getattr(method, 'name', type(method).__name__)!r} "
                              "overrides encode_video, so it cannot run from cached frame features")
        return False
    return True


def _clamp_logit_scale(method: nn.Module) -> None:
    """After each step, clamp CLIP's logit scale at ln 100, as CLIP4Clip, X-Pool and MSAM do.

    Every method also clamps it in its forward pass; clamping the parameter as well keeps it where the releases
    keep it (OpenAI's weights start exactly at ln 100, so without this the first steps would push it above,
    where the forward clamp passes no gradient).
    """
    from dvtr_bench.models.base import LOGIT_SCALE_MAX

    backbone = getattr(method, "backbone", None)
    scale = getattr(getattr(backbone, "model", None), "logit_scale", None)
    if isinstance(scale, torch.Tensor) and scale.requires_grad:
        with torch.no_grad():
            scale.clamp_(max=LOGIT_SCALE_MAX)


def _gather_rng(world: int) -> Any:
    """RNG states of every rank (list indexed by rank) so each rank resumes its own streams."""
    state = ckpt.rng_state()
    if world == 1:
        return [state]
    import torch.distributed as dist

    out: list[Any] = [None] * world
    dist.all_gather_object(out, state)
    return out


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None
