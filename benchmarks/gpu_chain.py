"""The tiny chain on a CUDA machine: AMP, the uint8 data path, GPU JPEG decoding, one-process NCCL; prints throughputs.

Runs in a few minutes: a generated dataset folder, the tiny backbone at 224 px, then

1. evaluation clips/s: model alone (frames already on the GPU), streamed with the FrameSpec in the loader
   threads (the CPU path), streamed with uint8 frames and the FrameSpec on the GPU (loader threads, and worker
   processes), and with nvjpeg decoding, each as a ratio to the model alone; fp16 and bf16 autocast;
2. one training epoch (fp16 AMP) of meanP under one-process NCCL (``torch.distributed`` initialised with
   world size 1), and a frozen-backbone epoch from cached frame features against encoding every step.

    python benchmarks/gpu_chain.py                 # says "no CUDA" and exits (status 0, so `make bench` goes on)
    python benchmarks/gpu_chain.py --clips 256 --workers 8
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=192, help="clips per split of the generated dataset")
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="loader threads (or processes)")
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("no CUDA: this benchmark needs a CUDA GPU (torch.cuda.is_available() is False), skipped; "
              "benchmarks/datapath_speed.py measures the CPU paths")
        return 0

    import datasets
    import torch.distributed as dist

    import dvtr_bench
    from dvtr_bench.engine.data import FrameSource
    from dvtr_bench.engine.evaluate import encode_clips
    from dvtr_bench.engine.trainer import TrainConfig, seed_everything, train
    from dvtr_bench.models import create_method
    from dvtr_bench.testing.learnable import write_learnable_dataset

    datasets.disable_progress_bars()
    dev = torch.device("cuda:0")
    tmp = tempfile.TemporaryDirectory(prefix="dvtr-gpu-chain-")
    folder = write_learnable_dataset(os.path.join(tmp.name, "ds"), n_train=args.clips, n_val=args.clips // 4,
                                     n_test=args.clips, size=224)
    ds = dvtr_bench.load_dataset(str(folder))
    split = ds["test"]
    n = len(split)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(dev)}, {os.cpu_count()} cores, "
          f"{args.workers} workers; {n} test clips of 12 frames, tiny backbone at 224 px")

    method = create_method("meanP", backbone="dvtr-tiny", pretrained=None).to(dev).eval()
    spec = method.frame_spec

    def clips_per_s(source, dtype=torch.float16) -> float:
        encode_clips(method, source, range(min(n, args.batch)), dev, args.batch, autocast=dtype)  # warm-up
        torch.cuda.synchronize(dev)
        t = time.perf_counter()
        encode_clips(method, source, range(n), dev, args.batch, autocast=dtype)
        torch.cuda.synchronize(dev)
        return n / (time.perf_counter() - t)

    on_gpu = FrameSource(split, spec, cache="prepared", name="test")
    on_gpu._prepared = tuple(t.to(dev) for t in on_gpu._prepared)  # model alone: no host work, no copies
    model = clips_per_s(on_gpu)
    model_bf16 = clips_per_s(on_gpu, torch.bfloat16)
    rows = [("model alone, fp16 autocast", model), ("model alone, bf16 autocast", model_bf16)]
    for label, kw in (("streamed, FrameSpec in loader threads", {}),
                      ("streamed, uint8 -> FrameSpec on GPU", {"frame_device": dev}),
                      ("streamed, uint8 -> GPU, worker processes", {"frame_device": dev, "loader": "processes"}),
                      ("streamed, nvjpeg decode + FrameSpec on GPU", {"frame_device": dev, "decode_device": dev})):
        src = FrameSource(split, spec, num_workers=args.workers, cache="stream", name="test", **kw)
        rows.append((label, clips_per_s(src)))
    print("\n1. evaluation throughput")
    for label, r in rows:
        print(f"  {label:<44} {r:9.1f} clips/s   ratio to model alone {r / model:5.2f}")

    print("\n2. training (one-process NCCL, fp16 AMP)")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("nccl", rank=0, world_size=1, device_id=dev)
    try:
        for label, extra in (("meanP, full fine-tuning", {}),
                             ("xpool, frozen backbone, every step", {"freeze_backbone": True, "feature_cache": "off"}),
                             ("xpool, frozen backbone, cached", {"freeze_backbone": True, "feature_cache": "on"})):
            seed_everything(0)
            m = create_method("xpool" if "xpool" in label else "meanP", backbone="dvtr-tiny", pretrained=None)
            cfg = TrainConfig.from_dict({"epochs": 1, "batch_size": 64, "num_workers": args.workers, **extra})
            res = train(m.to(dev), ds["train"], ds["validation"], os.path.join(tmp.name, label.replace(" ", "_")),
                        config=cfg, seed=0, device=dev)
            pairs = res.history[0]["pairs"] - res.history[0]["pairs_sitting_out"]
            print(f"  {label:<40} {res.train_seconds:7.2f} s/epoch   {pairs / res.train_seconds:9.1f} pairs/s   "
                  f"val rsum {res.best_val['rsum']:.2f}   {res.extra.get('data_path')}")
    finally:
        dist.destroy_process_group()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
