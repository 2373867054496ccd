"""Old and new data paths give the same scores: a demo's trained checkpoints evaluated on its test split with the
previous path (PIL decoding, the FrameSpec per clip) and with every loader and frame path of the current code,
scores compared element by element (docs/data-path.md, "Measured").

    make demo && python benchmarks/datapath_parity.py demo-output
"""

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import dvtr_bench  # noqa: E402
from dvtr_bench.engine.data import ClipFrames, decode_jpeg  # noqa: E402
from dvtr_bench.engine.evaluate import evaluate  # noqa: E402
from dvtr_bench.engine.saved import load_saved  # noqa: E402
from dvtr_bench.models.base import pad_clip  # noqa: E402

torch.set_num_threads(1)
demo = sys.argv[1] if len(sys.argv) > 1 else "demo-output"
ds = dvtr_bench.load_dataset(f"{demo}/dataset")["test"]

class PILSource:
    """The previous path, literally: PIL decode of each frame, the FrameSpec per clip, zero padding."""

    path = "PIL reference"

    def __init__(self, split, spec):
        self.cf, self.spec = ClipFrames(split, spec), spec

    def batches(self, batches):
        for b in batches:
            clips = [pad_clip(self.spec(np.stack([decode_jpeg(x) for x in self.cf.blobs(i)])), 12) for i in b]
            yield torch.tensor(b), torch.stack([c[0] for c in clips]), torch.stack([c[1] for c in clips])


for name in sorted(os.listdir(f"{demo}/results")):
    if not os.path.exists(f"{demo}/results/{name}/run.json"):
        continue
    saved = load_saved(f"{demo}/results/{name}")
    m = saved.method
    ref = evaluate(m, ds, batch_size=16, source=PILSource(ds, m.frame_spec))
    rec = np.load(f"{demo}/results/{name}/scores_seed0.npz")["scores"]
    print(f"{name}: PIL reference R-sum {ref.metrics['rsum']:.2f}; vs the demo's score file: max |diff| "
          f"{np.abs(ref.scores - rec).max():.3g}")
    for label, kw in (("threads, FrameSpec in loader", dict(num_workers=2)),
                      ("threads, 0 (main thread)", dict(num_workers=0)),
                      ("processes, FrameSpec in workers", dict(num_workers=2, loader="processes")),
                      ("threads, uint8 to frame device", dict(num_workers=2, frame_device="cpu")),
                      ("processes, uint8 to frame device",
                       dict(num_workers=2, frame_device="cpu", loader="processes")),
                      ("threads, decode on frame device", dict(num_workers=2, decode_device="cpu"))):
        r = evaluate(m, ds, batch_size=16, **kw)
        print(f"  {label:36s} R-sum {r.metrics['rsum']:.2f}  max |score diff| "
              f"{np.abs(r.scores - ref.scores).max():.3g}  metrics equal {r.metrics == ref.metrics}")
