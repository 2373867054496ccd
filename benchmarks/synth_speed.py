"""How fast `dvtr synth` makes footage on ONE core, as a realtime factor (seconds of video per second).

Target (issue 2): >= 4x real time at 640x360, 25 fps, generation + H.264 encoding, single-threaded.

The process is pinned to one CPU and every library is limited to one thread (OpenCV, BLAS/OpenMP,
x264 threads=1). Two figures are printed: wall-clock, and CPU time of this process. On a shared
machine other processes steal the pinned core, which lowers the wall-clock figure but not the CPU
figure; on an idle core the two agree. The target is checked on the CPU-time figure, and the load
average is printed so readers can judge the wall-clock one.

    python benchmarks/synth_speed.py [--flights 1] [--resolution 640x360] [--fps 25]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402

TARGET = 4.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flights", type=int, default=1)
    ap.add_argument("--takes", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolution", default="640x360")
    ap.add_argument("--fps", type=float, default=25.0)
    args = ap.parse_args()
    w, h = (int(v) for v in args.resolution.lower().split("x"))

    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    if "torch" in sys.modules:  # never imported by synth, but keep the promise if a caller did
        sys.modules["torch"].set_num_threads(1)

    from dvtr_bench.synth import generate
    from dvtr_bench.synth.generate import flight_frames, plan_flight

    with tempfile.TemporaryDirectory(prefix="dvtr-synth-bench-") as tmp:
        load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        c0, t0 = time.process_time(), time.perf_counter()
        summary = generate(tmp, flights=args.flights, seed=args.seed, resolution=(w, h), fps=args.fps,
                           takes_per_flight=args.takes)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        size = sum(f.stat().st_size for f in os.scandir(os.path.join(tmp, "videos")))
    # The same flights again without the encoder: what drawing alone costs.
    c1 = time.process_time()
    for f in range(args.flights):
        plan = plan_flight(args.seed, f, args.takes, args.fps, 3.0, 30.0)
        for _ in flight_frames(args.seed, plan, w, h, args.fps):
            pass
    cpu_render = time.process_time() - c1
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    video_s = summary["seconds"]
    frames = summary["frames"]
    rt_cpu = video_s / cpu
    rt_wall = video_s / wall
    print(f"dvtr synth speed: {args.flights} flight(s), {summary['takes']} takes, {frames} frames, "
          f"{video_s:.1f} s of {w}x{h} @ {args.fps:g} fps video, one core, one thread")
    print(f"  realtime factor (CPU time)   : {rt_cpu:6.2f} x   ({cpu:.1f} s CPU)")
    print(f"  realtime factor (wall clock) : {rt_wall:6.2f} x   ({wall:.1f} s wall, load average {load0:.1f} -> {load1:.1f})")
    print(f"  per frame                    : {1000 * cpu / frames:.2f} ms total = "
          f"{1000 * cpu_render / frames:.2f} ms drawing + {1000 * (cpu - cpu_render) / frames:.2f} ms H.264 encoding")
    print(f"  output                       : {size / 1e6:.1f} MB, {size * 8 / video_s / 1e6:.2f} Mbit/s")
    print(f"  target                       : >= {TARGET:.1f} x real time  ->  "
          f"{'PASS' if rt_cpu >= TARGET else 'FAIL'} ({rt_cpu / TARGET:.2f} x the target)")
    return 0 if rt_cpu >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
