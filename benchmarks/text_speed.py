"""Caption-derived inputs: the cost of parsing a training split and of AMFMN's caption-caption prior.

Captions: the train split of a dvtr dataset folder (--dataset, e.g. the demo's `demo-output/dataset`: 945 captions
of 189 clips), or by default a learnable set of 189 clips with 5 captions each (dvtr_bench.testing).

Prints, each measured in this run on the same captions:
  * parse_captions over the split (pipeline load included), uncached
  * prior_similarity over the split, uncached, and the per-pair path it replaces (pair_similarity: NLTK's
    sentence_bleu per pair, re-tokenising the clip's captions each time, as AMFMN's script does) on a sample of
    --sample captions against every clip: the speed-up (target >= 20) and the largest difference (target < 1e-6)
  * with --large: prior_similarity on 10,000 captions x 2,000 clips (the split's captions repeated, 5 per clip)
  * the machine's load average before and after: the machine is shared, wall times move with it

    python benchmarks/text_speed.py [--dataset DIR] [--sample 20] [--large]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np


def _corpus(dataset: str | None):
    from dvtr_bench.text import CaptionCorpus

    if dataset:
        from dvtr_bench.dataset.hub import open_dataset

        rows = open_dataset(dataset)["train"].select_columns(["clip_id", "captions"]).to_list()
    else:
        from dvtr_bench.testing.learnable import learnable_rows

        rows = learnable_rows(189, "train", size=16, n_frames=1, captions_per_clip=5)
    texts = tuple(c for r in rows for c in r["captions"])
    owners = np.repeat(np.arange(len(rows)), [len(r["captions"]) for r in rows])
    return CaptionCorpus(texts=texts, caption_to_clip=owners, clip_ids=tuple(r["clip_id"] for r in rows))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default=None, help="a dvtr dataset folder (its train split); default: learnable")
    ap.add_argument("--sample", type=int, default=20, help="captions timed through the per-pair path")
    ap.add_argument("--large", action="store_true", help="also time 10,000 captions x 2,000 clips")
    args = ap.parse_args()
    # measure uncached: a private cache folder, dropped at the end
    os.environ["DVTR_CACHE_DIR"] = tempfile.mkdtemp(prefix="dvtr-text-bench-")
    from dvtr_bench.text import CaptionCorpus
    from dvtr_bench.text.parse import parse_captions, pipeline_info
    from dvtr_bench.text.similarity import pair_similarity, prior_similarity

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    corpus = _corpus(args.dataset)
    print(f"captions: {len(corpus)} of {corpus.n_clips} clips ({args.dataset or 'learnable'})")

    t = time.perf_counter()
    parse_captions(list(corpus.texts))
    print(f"parse_captions ({pipeline_info()['name']} {pipeline_info()['version']}): "
          f"{time.perf_counter() - t:.2f} s, pipeline load included")

    t = time.perf_counter()
    sim = prior_similarity(corpus)
    fast = time.perf_counter() - t
    print(f"prior_similarity {len(corpus)} x {corpus.n_clips}: {fast:.2f} s "
          f"({fast / sim.size * 1e6:.2f} us a pair)")

    k = min(args.sample, len(corpus))
    refs = [[corpus.texts[r] for r in corpus.captions_of(c)] for c in range(corpus.n_clips)]
    t = time.perf_counter()
    ref = np.array([[pair_similarity(refs[c], corpus.texts[j]) for c in range(corpus.n_clips)] for j in range(k)])
    per_pair = (time.perf_counter() - t) / ref.size
    diff = float(np.abs(ref - sim[:k]).max())
    speedup = per_pair * sim.size / fast
    print(f"per-pair path: {per_pair * 1e6:.0f} us a pair, {per_pair * sim.size:.0f} s for the split estimated")
    print(f"speed-up {speedup:.0f}x (target >= 20), largest difference {diff:.1e} (target < 1e-6)")

    if args.large:
        texts = (corpus.texts * (10_000 // len(corpus) + 1))[:10_000]
        big = CaptionCorpus(texts=texts, caption_to_clip=np.arange(10_000) // 5,
                            clip_ids=tuple(f"c{i}" for i in range(2_000)))
        t = time.perf_counter()
        s = prior_similarity(big)
        print(f"prior_similarity 10000 x 2000: {time.perf_counter() - t:.1f} s, {s.nbytes / 2**20:.0f} MiB")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0 if speedup >= 20 and diff < 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
