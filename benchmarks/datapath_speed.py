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
   exact size of what grows by design (embeddings, the score matrix, the protocol's clip ids), per phase, and
   what grows after the peak (the metrics' comparison mask, the score file's id array).

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


def _malloc_trim() -> None:
    """Give glibc's free heap pages back to the system (no-op elsewhere), so "before" counts live memory only."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def memory_child(n_clips: int, folder: str) -> None:
    """Evaluate a generated split of ``n_clips`` and print its memory figures as JSON (kiB and bytes).

    Peak anonymous memory (RssAnon sampled every 2 ms) over the memory before evaluation, overall and per phase
    (phases follow evaluate's progress events: captions + text encoding, video encoding, scoring + metrics +
    score file), and the exact sizes of what grows with the split by design.
    """
    import datasets
    import torch

    from dvtr_bench.dataset.schema import clip_features
    from dvtr_bench.engine.data import FrameSource
    from dvtr_bench.engine.evaluate import encode_clips, evaluate
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
    # One clip's and one caption's embedding, to size the split's exactly (float32, as evaluate keeps them).
    one_clip = encode_clips(method, FrameSource(split, method.frame_spec, cache="stream"), range(1),
                            torch.device("cpu"), 1)
    clip_bytes = sum(v[0].numel() * v.element_size() for v in one_clip.values())
    with torch.no_grad():
        one_text = method.encode_text(method.tokenize(["caption number 0"]))
    text_bytes = sum(v[0].numel() * v.element_size() for v in one_text.values())
    del one_clip, one_text
    _malloc_trim()
    base = _rss_anon_kib()
    phase = ["text"]
    peak = {"text": base}

    def on_progress(p) -> None:
        # evaluate reports "<split> clips" after each clip batch and "<split> score" (0 then 1) around scoring
        name = p.task.rsplit(" ", 1)[-1]
        now = {"clips": "video", "score": "score" if p.completed == 0 else "end"}.get(name)
        if now is not None and now != phase[0]:
            peak[phase[0]] = max(peak.get(phase[0], base), _rss_anon_kib())
            phase[0] = now
            peak.setdefault(now, base)

    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            p = phase[0]
            peak[p] = max(peak.get(p, base), _rss_anon_kib())
            time.sleep(0.002)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    # 16 captions per text block: the text encoder's activations are a fixed cost (the same at any split size)
    # that would otherwise be the peak at 2,000 clips and hide what grows.
    res = evaluate(method, split, device="cpu", batch_size=64, text_batch_size=16, num_workers=0,
                   scores_path=os.path.join(folder, "scores.npz"), progress=on_progress)
    stop.set()
    th.join()
    peak[phase[0]] = max(peak[phase[0]], _rss_anon_kib())
    n_cap = res.n_captions
    # What grows with the split by design, all held at once while the score matrix is filled (the peak):
    ids = (sys.getsizeof(res.clip_ids) + sum(sys.getsizeof(c) for c in res.clip_ids)  # the protocol's clip
           + 8 * (n_clips + 1))  # ids (result, score file) as Python strings, plus the caption offsets per clip
    grows = {"video embeddings": n_clips * clip_bytes, "text embeddings": n_cap * text_bytes,
             "score matrix": n_cap * n_clips * 4, "clip ids": ids}
    # Transient, also growing with the split, but after evaluate has freed the embeddings (so below the peak
    # while smaller than them): the metrics engine's working memory (a boolean comparison of a chunk of rows,
    # 1 byte per score, at most 16 Mi) and writing the score file (the same finiteness mask; its clip ids as a
    # fixed-width unicode array and the uniqueness check's Python copy and set of them, about 200 bytes per
    # clip). Measured here, after the sampled run, as tracemalloc peaks.
    import tracemalloc

    from dvtr_bench.protocol.metrics import compute_metrics
    from dvtr_bench.protocol.scores import save_scores

    def traced(f) -> int:
        tracemalloc.start()
        try:
            f()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    later = {"metrics": traced(lambda: compute_metrics(res.scores, res.caption_to_clip)),
             "score file": traced(lambda: save_scores(os.path.join(folder, "again.npz"), res.scores,
                                                      res.caption_to_clip, res.clip_ids,
                                                      caption_texts=res.caption_texts))}
    print(json.dumps({"base_kib": base, "peak_kib": max(peak.values()), "phase_peak_kib": peak,
                      "grows_bytes": sum(grows.values()), "grows": grows, "later": later, "n_captions": n_cap}))


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
            for idx, _, _ in src.stream(view, order):
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
              "streamed, score file written, its own process per size; before = after malloc_trim):")
        res = {}
        for size in (2000, 20000):
            folder = os.path.join(tmp.name, f"mem{size}")
            p = subprocess.run([sys.executable, __file__, "--memory-child", str(size), folder],
                               capture_output=True, text=True, check=True)
            res[size] = json.loads(p.stdout.strip().splitlines()[-1])
        mib = 2 ** 20
        rest = {}
        for size, r in res.items():
            delta = (r["peak_kib"] - r["base_kib"]) / 1024
            rest[size] = delta - r["grows_bytes"] / mib
            ph = ", ".join(f"{k} {(v - r['base_kib']) / 1024:.1f}" for k, v in r["phase_peak_kib"].items())
            print(f"  {size:6d} clips: peak - before evaluation {delta:6.1f} MiB, of which by design "
                  f"{r['grows_bytes'] / mib:5.1f} MiB (" + ", ".join(f"{k} {v / mib:.2f}" for k, v in
                                                                 r["grows"].items())
                  + f") -> rest {rest[size]:5.1f} MiB")
            print(f"                per phase: {ph} MiB; growing too, once the embeddings are freed: "
                  + ", ".join(f"{k} {v / mib:.2f}" for k, v in r["later"].items()) + " MiB (tracemalloc peaks)")
        a, b = res[2000], res[20000]
        print(f"  20,000 clips minus 2,000: peak {(b['peak_kib'] - b['base_kib'] - a['peak_kib'] + a['base_kib']) / 1024:+.1f}"
              f" MiB, by design {(b['grows_bytes'] - a['grows_bytes']) / mib:+.1f} MiB, rest "
              f"{rest[20000] - rest[2000]:+.1f} MiB"
              + (" (negative: the peak falls in video encoding, before the score matrix exists, which then reuses "
                 "pages the frame batches freed)" if rest[20000] < rest[2000] else ""))
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
