"""`dvtr index` / `dvtr search` against their targets: indexing throughput, query latency, approximate recall.

1. **Indexing throughput** against the evaluation runner on the same model and split, measured in the same run
   (rounds interleaved, medians). The runner's figure (``cost.eval_clips_per_s`` in a record) counts
   ``encode_video`` only, its frames decoded and preprocessed beforehand; the index pays decoding, the
   FrameSpec, thumbnails and writing as it goes. Printed: the index end to end against the runner's figure
   (the target, >= 0.8), against the runner's own end to end (decode + FrameSpec + encode), and the index's
   model time against the runner's (the same code: ~1).
2. **Query latency** over a generated 100,000-clip index on one CPU core: exact inner-product search (the
   target, < 50 ms), the approximate indexes (IVF, the default of ``--approximate``, and HNSW), and the model's
   text encoding shown apart.
3. **Recall@10 of the approximate indexes** against exact search on that index (target >= 0.95), with their
   default search breadth.

The generated index imitates what a model puts in an index of drone footage: clips of one flight lie close
together, flights of one scene kind share a direction, everything shares a common component (CLIP-style
embeddings are not centred); a query is a clip's vector plus enough noise that it sits at cosine ~0.3 from
its clip, as text and video embeddings do. The worst case -- directions drawn uniformly at random, no
structure at all -- is printed beside it for information.

    python benchmarks/search_speed.py                     # a generated 48-clip dataset, 100,000 generated vectors
    python benchmarks/search_speed.py --dataset demo-output/dataset --backbones dvtr-tiny,ViT-B-32
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _load_avg() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def indexing(dataset: Path, backbones: list[str], rounds: int, batch: int, out: Path) -> list[tuple[str, dict]]:
    import torch

    from dvtr_bench.engine.data import FrameSource
    from dvtr_bench.engine.evaluate import encode_clips, evaluate
    from dvtr_bench.search.build import build_index
    from dvtr_bench.search.frames import open_dataset
    from dvtr_bench.search.model import load_zero_shot

    split = open_dataset(dataset)["test"]
    n = len(split)
    rows = []
    for bb in backbones:
        # random weights: speed does not depend on their values, and nothing is downloaded
        model = load_zero_shot(bb, None, "meanP")
        m = model.method
        # warm-up on a few clips: first-call costs (allocators, lazy imports) must not land on either side
        warm = split.select(range(min(4, n)))
        encode_clips(m, FrameSource(warm, m.frame_spec), range(len(warm)), torch.device("cpu"), batch)
        runner, runner_e2e, index, index_model = [], [], [], []
        for r in range(rounds):
            for side in (("runner", "index") if r % 2 == 0 else ("index", "runner")):
                if side == "runner":
                    res = evaluate(m, split, device="cpu", batch_size=batch, frame_cache="prepared")
                    # the runner decodes and preprocesses every frame before it starts its clock: time that apart
                    t = time.perf_counter()
                    FrameSource(split, m.frame_spec, cache="prepared")
                    prep_s = time.perf_counter() - t
                    runner.append(res.clips_per_s)
                    runner_e2e.append(n / (prep_s + n / res.clips_per_s))
                else:
                    ix = build_index(dataset, out / f"{bb}-{r}", model, splits=["test"], batch_size=batch)
                    index.append(ix.manifest["timings"]["clips_per_s"])
                    index_model.append(ix.manifest["timings"]["model_clips_per_s"])
        med = statistics.median
        rows.append((bb, {"n": len(split), "image": m.frame_spec.image_size, "runner": med(runner),
                          "runner_e2e": med(runner_e2e), "index": med(index), "index_model": med(index_model)}))
    return rows


def generated_vectors(n: int, dim: int, structured: bool, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    if not structured:
        x = rng.standard_normal((n, dim)).astype(np.float32)
    else:
        kinds, per_flight = 12, 50
        flights = max(1, n // per_flight)
        common = rng.standard_normal(dim)
        kind = rng.standard_normal((kinds, dim))
        flight = kind[rng.integers(0, kinds, flights)] + 0.8 * rng.standard_normal((flights, dim))
        owner = np.minimum(np.arange(n) // per_flight, flights - 1)
        x = (0.9 * common + flight[owner] + 0.9 * rng.standard_normal((n, dim))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def queries_for(x, n_q: int, seed: int = 1):
    import numpy as np

    rng = np.random.default_rng(seed)
    base = x[rng.choice(x.shape[0], n_q, replace=False)]
    # noise of norm ~3 around a unit vector: cosine to its clip ~0.3, as between a caption and its clip
    q = base + 3.0 / np.sqrt(x.shape[1]) * rng.standard_normal(base.shape).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q.astype(np.float32), float(np.mean(np.sum(q * base, axis=1)))


def write_generated_index(path: Path, x, kind: str) -> float:
    """An index folder of ``x`` with placeholder rows and thumbnails; returns the faiss build seconds."""
    import io

    from PIL import Image

    from dvtr_bench.search import index as I

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 120, 60)).save(buf, format="JPEG")
    thumb = buf.getvalue()
    w = I.IndexWriter(path, x.shape[0])
    step = 10_000
    for s in range(0, x.shape[0], step):
        block = x[s:s + step]
        rows = [{"clip_id": f"clip{s + i:06d}", "video_id": f"flight{(s + i) // 50:05d}", "source": None,
                 "split": "test", "start_s": 0.0, "end_s": 4.0, "label": None, "captions": [], "telemetry": None}
                for i in range(block.shape[0])]
        w.add(rows, block, [thumb] * block.shape[0], 1)
    t = time.perf_counter()
    search = {"kind": kind}
    if kind == "ivf":
        search.update(nlist=I.default_nlist(x.shape[0]), nprobe=I.default_nprobe(I.default_nlist(x.shape[0])))
    elif kind == "hnsw":
        search.update(hnsw_m=I.DEFAULT_HNSW_M, ef_search=I.DEFAULT_EF_SEARCH)
    w.finish({"model": {"kind": "generated"}, "search": search}, kind=kind, nlist=search.get("nlist"))
    return time.perf_counter() - t


def latency_ms(index, q, k: int = 10) -> tuple[float, float]:
    times = []
    for i in range(q.shape[0]):
        t = time.perf_counter()
        _, rows = index.search(q[i:i + 1], k)
        _ = [index.rows[int(r)]["clip_id"] for r in rows[0]]      # what a search answer reads back
        times.append(1000 * (time.perf_counter() - t))
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def recall_at(approx, exact, q, k: int = 10) -> float:
    import numpy as np

    _, a = approx.search(q, k)
    _, e = exact.search(q, k)
    return float(np.mean([len(set(a[i]) & set(e[i])) / k for i in range(q.shape[0])]))


def text_encoding_ms(backbone: str, repeats: int = 30) -> float:
    import torch

    from dvtr_bench.search.model import load_zero_shot

    m = load_zero_shot(backbone, None, "meanP").method
    times = []
    with torch.no_grad():
        for r in range(repeats + 3):
            t = time.perf_counter()
            m.text_vector(m.encode_text(m.tokenize(["two boats moored beside a pier"])))
            if r >= 3:
                times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", help="dvtr dataset folder (default: a generated 48-clip folder); its test split")
    ap.add_argument("--backbones", default="dvtr-tiny,ViT-B-32",
                    help="open_clip models for the throughput comparison, meanP on top, random weights")
    ap.add_argument("--rounds", type=int, default=2, help="timed rounds of the throughput comparison")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--clips", type=int, default=100_000, help="size of the generated index")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args(argv)

    import datasets
    import faiss
    import torch

    from dvtr_bench.search.index import DEFAULT_EF_CONSTRUCTION, DEFAULT_EF_SEARCH, DEFAULT_HNSW_M, VectorIndex

    datasets.disable_progress_bars()
    tmp = Path(tempfile.mkdtemp(prefix="dvtr-search-speed-"))
    print(f"torch {torch.__version__}, faiss {faiss.__version__}, {os.cpu_count()} cores, load average "
          f"{_load_avg()} (1/5/15 min) at start")

    ok = True
    if not args.skip_throughput:
        dataset = Path(args.dataset) if args.dataset else None
        if dataset is None:
            from dvtr_bench.testing.learnable import write_learnable_dataset

            dataset = write_learnable_dataset(tmp / "ds", n_train=0, n_val=0, n_test=48)
        torch.set_num_threads(os.cpu_count() or 1)
        rows = indexing(dataset, [b.strip() for b in args.backbones.split(",") if b.strip()], args.rounds,
                        args.batch, tmp / "idx")
        print(f"\n1. indexing throughput, meanP on the test split of {dataset} ({rows[0][1]['n']} clips, protocol "
              f"frames), batch {args.batch}, CPU, {torch.get_num_threads()} threads, median of {args.rounds} "
              "interleaved rounds:")
        print(f"  {'backbone':<10} {'px':>4} {'runner':>9} {'runner':>9} {'index':>9} {'index':>9}   "
              f"{'index e2e /':>11} {'index e2e /':>11} {'index model /':>13}")
        print(f"  {'':<10} {'':>4} {'(record)':>9} {'e2e':>9} {'e2e':>9} {'model':>9}   "
              f"{'runner rec.':>11} {'runner e2e':>11} {'runner rec.':>13}")
        for bb, r in rows:
            a, b, c = r["index"] / r["runner"], r["index"] / r["runner_e2e"], r["index_model"] / r["runner"]
            ok &= a >= 0.8
            print(f"  {bb:<10} {r['image']:>4} {r['runner']:>9.3g} {r['runner_e2e']:>9.3g} {r['index']:>9.3g} "
                  f"{r['index_model']:>9.3g}   {a:>11.2f} {b:>11.2f} {c:>13.2f}")
        print("  (clips/s. runner (record) = cost.eval_clips_per_s: encode_video only, frames decoded beforehand; "
              "e2e = JPEG decode + FrameSpec + encode (+ thumbnails and writing for the index). Target: index e2e "
              ">= 0.8 x runner (record).)")

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    results = {}
    for structured in (True, False):
        x = generated_vectors(args.clips, args.dim, structured)
        q, cos = queries_for(x, args.queries)
        name = "structured" if structured else "uniform"
        res = {"cos": cos}
        for kind in ("exact", "ivf", "hnsw"):
            faiss.omp_set_num_threads(os.cpu_count() or 1)     # building is not the target: use every core
            res[f"{kind}_build_s"] = write_generated_index(tmp / f"{name}-{kind}", x, kind)
            faiss.omp_set_num_threads(1)
            index = VectorIndex(tmp / f"{name}-{kind}", threads=1)
            res[kind] = latency_ms(index, q)
            res[f"{kind}_mb"] = index.size_bytes / 1e6
            res[f"{kind}_breadth"] = index.breadth
            if kind == "exact":
                exact = index
            else:
                res[f"{kind}_recall"] = recall_at(index, exact, q)
                index.close()
                shutil.rmtree(tmp / f"{name}-{kind}", ignore_errors=True)
        exact.close()
        results[name] = res
    text = {bb.strip(): text_encoding_ms(bb.strip()) for bb in args.backbones.split(",") if bb.strip()}

    s, u = results["structured"], results["uniform"]
    ivf = s["ivf_breadth"]
    print(f"\n2. query latency, generated index of {args.clips:,} clips x {args.dim} float32, one CPU core "
          f"(faiss and torch 1 thread), {args.queries} queries, k = 10, median / p95:")
    print(f"  exact (IndexFlatIP, {s['exact_mb']:.0f} MB on disk):           {s['exact'][0]:6.2f} / "
          f"{s['exact'][1]:6.2f} ms   target < 50 ms: {'met' if s['exact'][1] < 50 else 'NOT met'} (p95)")
    print(f"  approximate, IVF ({ivf['nlist']} lists, nprobe {ivf['nprobe']}, {s['ivf_mb']:.0f} MB): "
          f"{s['ivf'][0]:6.2f} / {s['ivf'][1]:6.2f} ms   (trained and filled in {s['ivf_build_s']:.0f} s on "
          f"{os.cpu_count()} cores)")
    print(f"  approximate, HNSW (M {DEFAULT_HNSW_M}, efSearch {DEFAULT_EF_SEARCH}, {s['hnsw_mb']:.0f} MB): "
          f"{s['hnsw'][0]:6.2f} / {s['hnsw'][1]:6.2f} ms   (graph built in {s['hnsw_build_s']:.0f} s on "
          f"{os.cpu_count()} cores, efConstruction {DEFAULT_EF_CONSTRUCTION})")
    print("  text encoding of the query, apart (meanP, one thread, median of 30): "
          + ", ".join(f"{bb} {ms:.1f} ms" for bb, ms in text.items()))
    ok &= s["exact"][1] < 50
    print(f"\n3. recall@10 of the approximate indexes against exact search, same {args.queries} queries "
          f"(cosine query-clip {s['cos']:.2f}):")
    print(f"  structured index (flights and scene kinds): IVF {s['ivf_recall']:.3f}, HNSW {s['hnsw_recall']:.3f}   "
          f"target >= 0.95 (IVF, the default): {'met' if s['ivf_recall'] >= 0.95 else 'NOT met'}")
    print(f"  worst case, uniform random directions:     IVF {u['ivf_recall']:.3f}, HNSW {u['hnsw_recall']:.3f}   "
          "(no structure for any index to use: information only)")
    ok &= s["ivf_recall"] >= 0.95
    print(f"\nload average at end {_load_avg()}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
