"""Training-step cost of each method relative to meanP, and the evaluation loader against the model.

1. Train step (forward + backward + AdamW step, the trainer's own code path) of every method at the same batch
   on the tiny backbone, as a ratio to meanP's step time (measured in this run, so the machine cancels out).
2. Evaluation: clips/s the frame loader delivers (JPEG decode + FrameSpec in worker processes, streamed from the
   dataset's Parquet shards) against clips/s the model consumes (``encode_video`` under no_grad). A ratio above
   1 means the loader keeps the model busy.

    python benchmarks/train_speed.py                      # a generated 64-clip dataset folder
    python benchmarks/train_speed.py --dataset demo-output/dataset --workers 2 --batch 8

Default methods: every registered one. Methods that learn from the caption text (amfmn, mcsan, dmae) receive the
split's captions through ``prepare_text`` first, as the trainer gives them the training captions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


class _Trainee:
    """One method with its optimiser, stepping exactly like the trainer (forward, gathered loss, backward, clip, AdamW)."""

    def __init__(self, name: str, corpus: object):
        import torch

        from dvtr_bench.models import create_method
        from dvtr_bench.engine.optim import build_optimizer
        from dvtr_bench.engine.trainer import _Step

        torch.manual_seed(0)
        self.method = create_method(name, backbone="dvtr-tiny", pretrained=None)
        self.method.prepare_text(corpus)  # before the optimiser, as in the trainer
        self.method.train()
        self.step_module = _Step(self.method, 1)
        self.opt = build_optimizer(self.method, lr=1e-4, backbone_lr=1e-4, weight_decay=0.01)
        self.times: list[float] = []

    def step(self, batch: dict, record: bool) -> None:
        import torch

        t = time.perf_counter()
        out = self.step_module(batch["tokens"], batch["frames"], batch["mask"])
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.method.parameters(), 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if record:
            self.times.append(time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", help="dvtr dataset folder (default: a generated 64-clip folder)")
    ap.add_argument("--methods", default=None, help="comma-separated (default: every registered method)")
    ap.add_argument("--batch", type=int, default=8, help="training batch (clips), equal for every method")
    ap.add_argument("--steps", type=int, default=5, help="timed rounds (after 1 warm-up round)")
    ap.add_argument("--workers", type=int, default=2, help="decoding threads of the eval loader")
    ap.add_argument("--eval-batch", type=int, default=16)
    args = ap.parse_args(argv)

    import datasets
    import torch

    import dvtr_bench
    from dvtr_bench.models import create_method, list_methods
    from dvtr_bench.models.base import select_text
    from dvtr_bench.engine.evaluate import encode_clips
    from dvtr_bench.engine.data import Captions, FrameSource
    from dvtr_bench.text import CaptionCorpus

    datasets.disable_progress_bars()
    tmp = None
    if args.dataset is None:
        from dvtr_bench.testing.learnable import write_learnable_dataset

        tmp = tempfile.TemporaryDirectory(prefix="dvtr-train-speed-")
        args.dataset = str(write_learnable_dataset(os.path.join(tmp.name, "ds"), n_train=64, n_val=0, n_test=64))
    ds = dvtr_bench.load_dataset(args.dataset)
    split_name = "test" if "test" in ds else next(iter(ds))
    split = ds[split_name]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dataset {args.dataset} "
          f"({split_name}: {len(split)} clips), tiny backbone dvtr-tiny, CPU")

    # -- 1. training step per method, at one batch of real frames ---------------------------------------------
    probe = create_method("meanP", backbone="dvtr-tiny", pretrained=None)
    src = FrameSource(split, probe.frame_spec, num_workers=0, cache="prepared", name=split_name)
    idx = list(range(min(args.batch, len(split))))
    _, frames, mask = next(src.batches([idx]))
    caps = Captions.from_split(split, name=split_name)
    corpus = CaptionCorpus(tuple(caps.texts), caps.caption_to_clip, tuple(caps.clip_ids),
                           fingerprint=getattr(split, "_fingerprint", None))
    rows = torch.as_tensor([int(caps.offsets[i]) for i in idx])  # each clip's first caption
    batch = {"frames": frames, "mask": mask}
    names = [n.strip() for n in args.methods.split(",")] if args.methods else list_methods()
    # Round-robin: one step of every method per round, so a load change on a shared machine hits all of them.
    trainees = {name: _Trainee(name, corpus) for name in names}
    # each method's own text inputs (a method may derive more than tokens from the captions), made once, untimed
    tokens = {name: select_text(t.method.tokenize_corpus(corpus), rows) for name, t in trainees.items()}
    for r in range(1 + args.steps):
        for name, t in trainees.items():
            t.step({**batch, "tokens": tokens[name]}, record=r > 0)
    results = {name: statistics.median(t.times) for name, t in trainees.items()}
    base = results.get("meanP")
    print(f"\ntraining step, batch {len(idx)} clips x 12 frames (median of {args.steps} interleaved rounds):")
    print(f"  {'method':<12} {'s/step':>8} {'x meanP':>8}")
    for name, t in results.items():
        ratio = f"{t / base:8.2f}" if base else "     n/a"
        print(f"  {name:<12} {t:8.3f} {ratio}")

    # -- 2. evaluation loader vs model consumption ---------------------------------------------------------------
    n = len(split)
    order = [list(range(s, min(n, s + args.eval_batch))) for s in range(0, n, args.eval_batch)]
    stream = FrameSource(split, probe.frame_spec, num_workers=args.workers, cache="stream", name=split_name)
    t = time.perf_counter()
    got = 0
    for _, f, _ in stream.batches(order):
        got += f.shape[0]
    load_cps = got / (time.perf_counter() - t)
    probe.eval()
    cached = FrameSource(split, probe.frame_spec, num_workers=0, cache="prepared", name=split_name)
    encode_clips(probe, cached, range(min(n, args.eval_batch)), torch.device("cpu"), args.eval_batch)  # warm-up
    t = time.perf_counter()
    encode_clips(probe, cached, range(n), torch.device("cpu"), args.eval_batch)
    model_cps = n / (time.perf_counter() - t)
    t = time.perf_counter()
    encode_clips(probe, stream, range(n), torch.device("cpu"), args.eval_batch)
    e2e_cps = n / (time.perf_counter() - t)
    print(f"\nevaluation, {n} clips, batch {args.eval_batch}:")
    print(f"  loader  (decode + FrameSpec, {args.workers} threads): {load_cps:8.1f} clips/s")
    print(f"  model   (encode_video, frames in memory):       {model_cps:8.1f} clips/s")
    print(f"  loader / model:                                 {load_cps / model_cps:8.2f}")
    print(f"  end to end (streamed loader feeding the model): {e2e_cps:8.1f} clips/s "
          f"({e2e_cps / model_cps:.2f} of the model's rate)")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
