"""The frame data path and the cached-feature mode, as ratios measured in the same run (docs/data-path.md).

1. decode: loader throughput per core (frames/s per worker process: decode + FrameSpec, and decode + pad to uint8,
   what a GPU run's workers do) against a bare libjpeg-turbo decode (``torchvision.io.decode_jpeg`` of the same
   stored frames, one thread, bytes already in memory). PIL's decode of the same frames is printed beside it,
   with the largest pixel difference between the two decoders.
2. loader vs model: clips/s the loader delivers (W workers) against clips/s the tiny model consumes
   (``encode_video`` on frames in memory), and streamed end to end against the model alone.
3. cached features: one training epoch of meanP, seqTransf and xpool with a frozen backbone, from cached frame
   features against encoding the frames every step (same seed), and whether their validation metrics agree.
4. memory: peak anonymous memory of evaluating a generated 2,000-clip and 20,000-clip split (tiny 32 px frames,
   only the first 200 clips captioned so the score matrix stays small; each size in its own process), beside the
   size of what grows by design (embeddings, score matrix, caption lists).

    python benchmarks/datapath_speed.py                       # a generated dataset folder
    python benchmarks/datapath_speed.py --dataset demo-output/dataset --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _cpu_s() -> float:
    """CPU seconds of this process and of its finished children (loader workers are joined when a loader ends)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _rss_anon_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def memory_child(n_clips: int, folder: str) -> None:
    """Evaluate a generated split of ``n_clips`` and print {"base_kib", "peak_kib", "grows_bytes"} as JSON."""
    import datasets
    import torch

    from dvtr_bench.dataset.schema import clip_features
    from dvtr_bench.engine.evaluate import evaluate
    from dvtr_bench.models import create_method

    datasets.disable_progress_bars()
    torch.set_num_threads(1)
    import io

    import numpy as np
    from PIL import Image

    g = np.random.default_rng(0)
    jpegs = []
    for _ in range(12):
        buf = io.BytesIO()
        Image.fromarray(g.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, format="JPEG")
        jpegs.append(buf.getvalue())
    captioned = 200

    def rows():
        for i in range(n_clips):
            yield {"clip_id": f"c{i:06d}", "video_id": f"v{i // 50:05d}", "split": "test", "start_s": 0.0,
                   "end_s": 1.0, "fps": 30.0, "width": 32, "height": 32,
                   "captions": [f"caption number {i}"] if i < captioned else [],
                   "frames": [{"bytes": b, "path": None} for b in jpegs],
                   "frame_times_s": [k / 12 for k in range(12)], "segmenter": "window", "segmenter_params": "{}",
                   "label": None, "clip_path": None, "meta": None, "telemetry": None}

    feats = clip_features()
    # Written to an Arrow file and memory-mapped: the split itself is file-backed, not anonymous memory.
    split = datasets.Dataset.from_generator(rows, features=feats, cache_dir=folder)
    torch.manual_seed(0)
    method = create_method("meanP", backbone="dvtr-tiny", pretrained=None, image_size=32).eval()
    base = _rss_anon_kib()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_anon_kib())
            time.sleep(0.005)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    res = evaluate(method, split, device="cpu", batch_size=64, num_workers=0)
    stop.set()
    th.join()
    peak[0] = max(peak[0], _rss_anon_kib())
    d = method.backbone.embed_dim
    grows = n_clips * d * 4 + res.n_captions * n_clips * 4 * 2 + n_clips * 100  # video emb, scores (+copy), ids
    print(json.dumps({"base_kib": base, "peak_kib": peak[0], "grows_bytes": grows, "n_captions": res.n_captions}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", help="dvtr dataset folder (default: a generated 48-clip-per-split folder)")
    ap.add_argument("--workers", type=int, default=2, help="loader threads (or worker processes, compared in part 1)")
    ap.add_argument("--passes", type=int, default=3,
                    help="reads of the split per loader measurement, through one source (as epochs read it); a "
                         "small split read once mostly measures start-up")
    ap.add_argument("--eval-batch", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=1, help="epochs per cached / uncached training run")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of the model (default 1: on a shared machine OpenMP's spinning threads "
                         "measure the other jobs more than the model)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: decode,loader,cache,memory")
    ap.add_argument("--memory-child", nargs=2, metavar=("N", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        memory_child(int(args.memory_child[0]), args.memory_child[1])
        return 0
    skip = set(filter(None, args.skip.split(",")))

    import datasets
    import numpy as np
    import torch

    import dvtr_bench
    from dvtr_bench.engine.data import FrameSource, decode_frames, decode_jpeg
    from dvtr_bench.engine.evaluate import encode_clips
    from dvtr_bench.models import create_method

    datasets.disable_progress_bars()
    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory(prefix="dvtr-datapath-")
    if args.dataset is None:
        from dvtr_bench.testing.learnable import write_learnable_dataset

        args.dataset = str(write_learnable_dataset(os.path.join(tmp.name, "ds"), n_train=48, n_val=16, n_test=48))
    ds = dvtr_bench.load_dataset(args.dataset)
    split_name = "test" if "test" in ds else next(iter(ds))
    split = ds[split_name]
    n = len(split)
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; dataset {args.dataset} ({split_name}: {n} clips)")
    probe = create_method("meanP", backbone="dvtr-tiny", pretrained=None).eval()
    spec = probe.frame_spec
    order = [list(range(s, min(n, s + args.eval_batch))) for s in range(0, n, args.eval_batch)]

    def rate(source: FrameSource, passes: int = 1) -> tuple[float, float]:
        """(clips per wall second, clips per CPU second of the process and its workers together), over
        ``passes`` reads of the split through the same source (as a training run's epochs read it)."""
        t, c = time.perf_counter(), _cpu_s()
        got = 0
        for _ in range(passes):
            for _, f, _ in source.batches(order):
                got += f.shape[0]
        return got / (time.perf_counter() - t), got / max(_cpu_s() - c, 1e-9)

    def uint8_rate(loader: str, passes: int) -> tuple[float, float]:
        # what a GPU run's loader does: decode, centre-crop while uint8, hand over (the FrameSpec runs on the GPU)
        src = FrameSource(split, spec, num_workers=args.workers, cache="stream", name=split_name, loader=loader)
        view = src.frames.view("uint8")
        t, c = time.perf_counter(), _cpu_s()
        got = 0
        for _ in range(passes):
            for idx, _, _ in src._stream(view, order):
                got += len(idx)
        return got / (time.perf_counter() - t), got / max(_cpu_s() - c, 1e-9)

    if "decode" not in skip:
        from torchvision.io import decode_jpeg as tv_decode

        from dvtr_bench.engine.data import ClipFrames

        cf = ClipFrames(split, spec, name=split_name)
        blobs = [cf.blobs(i) for i in range(n)]
        frames_total = sum(len(b) for b in blobs)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        t, c = time.perf_counter(), _cpu_s()
        for _ in range(args.passes):
            tv = [tv_decode([torch.frombuffer(bytearray(x), dtype=torch.uint8) for x in b]) for b in blobs]
        bare = args.passes * frames_total / (time.perf_counter() - t)
        bare_cpu = args.passes * frames_total / (_cpu_s() - c)
        t, c = time.perf_counter(), _cpu_s()
        pil = [np.stack([decode_jpeg(x) for x in b]) for b in blobs]
        pil_rate, pil_cpu = frames_total / (time.perf_counter() - t), frames_total / (_cpu_s() - c)
        torch.set_num_threads(threads)
        diff = max(int(np.abs(decode_frames(b).numpy().astype(np.int16) - p.astype(np.int16)).max())
                   for b, p in zip(blobs, pil))
        w = max(1, args.workers)
        fpc = frames_total / n  # stored frames per clip
        rows = []
        for loader in ("threads", "processes"):
            unit = "threads" if loader == "threads" else "worker processes"
            rows.append((f"loader, decode + FrameSpec, {args.workers} {unit}",
                         rate(FrameSource(split, spec, num_workers=args.workers, cache="stream", name=split_name,
                                          loader=loader), args.passes)))
            rows.append((f"loader, decode to uint8, {args.workers} {unit}", uint8_rate(loader, args.passes)))
        print(f"\n1. decode, {frames_total} stored frames ({tv[0][0].shape[1]}x{tv[0][0].shape[2]}), the split read "
              f"{args.passes} times; per core = per wall second / {w}, and per CPU second (robust to other jobs "
              "on the machine):")
        print(f"  {'':<52} {'per core (wall)':>15} {'per CPU second':>15} {'ratio to bare (wall, CPU)':>26}")
        print(f"  {'bare libjpeg-turbo (torchvision, 1 thread)':<52} {bare:15.1f} {bare_cpu:15.1f}")
        print(f"  {'PIL (1 thread)':<52} {pil_rate:15.1f} {pil_cpu:15.1f} {pil_rate / bare:12.2f} "
              f"{pil_cpu / bare_cpu:12.2f}")
        for label, (wall, cpu) in rows:
            print(f"  {label:<52} {wall * fpc / w:15.1f} {cpu * fpc:15.1f} {wall * fpc / w / bare:12.2f} "
                  f"{cpu * fpc / bare_cpu:12.2f}")
        print(f"  max |pixel difference| PIL vs torchvision: {diff}")

    if "loader" not in skip:
        stream = FrameSource(split, spec, num_workers=args.workers, cache="stream", name=split_name)
        load_cps, load_cpu = rate(stream, args.passes)
        cached = FrameSource(split, spec, num_workers=0, cache="prepared", name=split_name)
        encode_clips(probe, cached, range(min(n, args.eval_batch)), torch.device("cpu"), args.eval_batch)
        t, c = time.perf_counter(), _cpu_s()
        for _ in range(args.passes):
            encode_clips(probe, cached, range(n), torch.device("cpu"), args.eval_batch)
        model_cps, model_cpu = args.passes * n / (time.perf_counter() - t), args.passes * n / (_cpu_s() - c)
        t = time.perf_counter()
        for _ in range(args.passes):
            encode_clips(probe, stream, range(n), torch.device("cpu"), args.eval_batch)
        e2e_cps = args.passes * n / (time.perf_counter() - t)
        print(f"\n2. evaluation, {n} clips read {args.passes} times, batch {args.eval_batch}, tiny model at "
              f"{spec.image_size} px on {args.threads} thread(s); data path: {stream.path}")
        print(f"  loader (decode + FrameSpec, {args.workers} threads):   {load_cps:8.1f} clips/s   "
              f"{load_cpu:8.1f} clips per CPU second")
        print(f"  model (encode_video, frames in memory):       {model_cps:8.1f} clips/s   "
              f"{model_cpu:8.1f} clips per CPU second")
        print(f"  loader / model:                               {load_cps / model_cps:8.2f}   "
              f"(per CPU second: {load_cpu / model_cpu:.2f})")
        print(f"  streamed end to end:                          {e2e_cps:8.1f} clips/s   "
              f"ratio to the model alone: {e2e_cps / model_cps:.2f}")

    if "cache" not in skip and "train" in ds and "validation" in ds:
        from dvtr_bench.engine.trainer import TrainConfig, seed_everything, train

        print(f"\n3. frozen backbone, one epoch of training (train {len(ds['train'])} clips), cached frame features "
              "vs encoding every step, same seed:")
        print(f"  {'method':<10} {'encode once s':>13} {'cached s/ep':>11} {'every-step s/ep':>15} {'speed-up':>8} "
              f"{'same val metrics':>16}")
        for name in ("meanP", "seqTransf", "xpool"):
            out = {}
            for mode in ("on", "off"):
                seed_everything(0)
                m = create_method(name, backbone="dvtr-tiny", pretrained=None)
                cfg = TrainConfig.from_dict({"epochs": args.epochs, "batch_size": 16, "lr": 1e-4, "num_workers":
                                             args.workers, "freeze_backbone": True, "feature_cache": mode,
                                             "eval_batch_size": args.eval_batch})
                t = time.perf_counter()
                res = train(m, ds["train"], ds["validation"], os.path.join(tmp.name, f"{name}-{mode}"),
                            config=cfg, seed=0)
                total = time.perf_counter() - t
                out[mode] = (res, total)
            (rc, tc), (rp, _) = out["on"], out["off"]
            per_c = rc.train_seconds / args.epochs
            per_p = rp.train_seconds / args.epochs
            enc = tc - rc.train_seconds
            same = all(np.allclose(list(a["val"].values()), list(b["val"].values()), rtol=1e-6)
                       for a, b in zip(rc.history, rp.history))
            print(f"  {name:<10} {enc:13.2f} {per_c:11.3f} {per_p:15.3f} {per_p / per_c:8.1f} {str(same):>16}")
        print("  (encode once: the cached run's whole time minus its training epochs: encoding train and validation "
              "features, plus validation)")

    if "memory" not in skip:
        print("\n4. peak anonymous memory of evaluation (meanP, tiny model at 32 px, 200 captioned clips, "
              "streamed, its own process per size):")
        res = {}
        for size in (2000, 20000):
            folder = os.path.join(tmp.name, f"mem{size}")
            p = subprocess.run([sys.executable, __file__, "--memory-child", str(size), folder],
                               capture_output=True, text=True, check=True)
            res[size] = json.loads(p.stdout.strip().splitlines()[-1])
        for size, r in res.items():
            delta = (r["peak_kib"] - r["base_kib"]) / 1024
            print(f"  {size:6d} clips: peak - before evaluation {delta:8.1f} MiB, of which by design "
                  f"(embeddings, scores, ids) ~{r['grows_bytes'] / 2**20:6.1f} MiB -> rest {delta - r['grows_bytes'] / 2**20:7.1f} MiB")
        a = (res[2000]["peak_kib"] - res[2000]["base_kib"]) / 1024 - res[2000]["grows_bytes"] / 2**20
        b = (res[20000]["peak_kib"] - res[20000]["base_kib"]) / 1024 - res[20000]["grows_bytes"] / 2**20
        print(f"  rest at 20,000 clips minus rest at 2,000 clips: {b - a:+.1f} MiB")
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
