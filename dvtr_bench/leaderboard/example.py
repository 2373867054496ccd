"""Example result records from synthetic score matrices, to try `dvtr leaderboard` without training anything.

    python -m dvtr_bench.leaderboard.example --out /tmp/lb-example [--with-problems]
    dvtr leaderboard /tmp/lb-example --out /tmp/lb-tables --verify

The scores are random with a per-method signal added on the correct pairs, so the numbers mean nothing
about any method; the records themselves are real (score files, sha256, engine metrics, schema-valid) and
bound to an imaginary test split: its captions are made up and its clips have no frames, and the score
files carry its clip digests, so the fingerprint is the one that split would have.
``--with-problems`` adds a record on another dataset, an invalid record, an edited number and a record whose
score file was replaced (both caught by ``--verify``), a record claiming the main test split for scores
computed on the other one (caught by ``--verify`` through the score files' clip digests) and a truncated
record file.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from dvtr_bench.protocol.fingerprint import fingerprint_from_digests, row_digest
from dvtr_bench.protocol.record import build_record, collect_cost, write_record
from dvtr_bench.protocol.scores import save_scores

# name, signal strength, transductive, reranking, zero-shot, params, GFLOPs/clip, clips/s, train s
_METHODS: tuple[tuple[str, float, bool, str | None, bool, int, float | None, float, float], ...] = (
    ("CLIP zero-shot", 1.2, False, None, True, 151_277_313, 53.1, 410.0, 0.0),
    ("meanP", 2.0, False, None, False, 151_277_313, 53.1, 400.0, 5400.0),
    ("seqTransf", 2.2, False, None, False, 164_916_993, 53.4, 380.0, 6100.0),
    ("X-Pool", 2.3, False, None, False, 153_641_473, 53.6, 150.0, 7300.0),
    ("MSAM", 2.5, True, None, False, 158_921_729, None, 120.0, 8800.0),
    ("MSAM", 2.5, True, "dual_softmax", False, 158_921_729, None, 118.0, 8800.0),
)


class _ImaginarySplit:
    """Clip ids and captions of a test split that exists only as its fingerprint (no frames)."""

    def __init__(self, prefix: str, n_clips: int, captions_per_clip: int, name: str = "example-random") -> None:
        self.name = name
        self.n_clips = n_clips
        self.captions_per_clip = captions_per_clip
        self.clip_ids = [f"{prefix}_take_{i:03d}" for i in range(n_clips)]
        self.captions = [[f"synthetic caption {k} of {c}" for k in range(captions_per_clip)] for c in self.clip_ids]
        self.digests = [row_digest(c, caps, []) for c, caps in zip(self.clip_ids, self.captions)]
        self.fingerprint = fingerprint_from_digests(self.clip_ids, self.digests)

    def save(self, path: Path, scores: np.ndarray, c2c: np.ndarray) -> str:
        texts = [self.captions[c][k % self.captions_per_clip] for k, c in enumerate(c2c.tolist())]
        ids = [f"{self.clip_ids[c]}#{k % self.captions_per_clip}" for k, c in enumerate(c2c.tolist())]
        return save_scores(path, scores, c2c, self.clip_ids, caption_ids=ids, caption_texts=texts,
                           clip_digests=self.digests)


def _scores(rng: np.random.Generator, n_clips: int, caps: int, signal: float) -> tuple[np.ndarray, np.ndarray]:
    c2c = np.repeat(np.arange(n_clips), caps)
    s = rng.standard_normal((c2c.size, n_clips), dtype=np.float32)
    # Each clip gets a shared "visual" offset so that its captions are correlated, as real scores are.
    s[np.arange(c2c.size), c2c] += np.float32(signal)
    return s, c2c


def _dual_softmax(s: np.ndarray, temperature: float = 0.05) -> np.ndarray:
    # Test-time re-ranking: weights each score by a softmax over the captions (column-wise prior).
    z = s / temperature
    z = z - z.max(axis=0, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=0, keepdims=True)
    return (s * p * s.shape[0]).astype(np.float32)


def make_example_records(out_dir: str | Path, n_clips: int = 200, captions_per_clip: int = 5, seed: int = 0,
                         with_problems: bool = False) -> list[Path]:
    """Write example runs (score files + record.json) under ``out_dir``; returns the record paths."""
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    split = _ImaginarySplit(f"flight_{seed:02d}", n_clips, captions_per_clip)
    paths: list[Path] = []
    # Hardware, package versions and the git commit are the same for every example: look them up once.
    machine = collect_cost(None, None, None, None, None)

    def one(name: str, signal: float, transductive: bool, reranking: str | None, zero_shot: bool, params: int,
            gflops: float | None, cps: float, train_s: float, split: _ImaginarySplit, folder: str) -> Path:
        run_dir = out / folder
        seeds = (0,) if zero_shot else (0, 1, 2)
        files = {}
        for s in seeds:
            scores, c2c = _scores(rng, split.n_clips, split.captions_per_clip, signal + 0.1 * s)
            if reranking:
                scores = _dual_softmax(scores)
            files[s] = run_dir / f"scores_seed{s}.npz"
            split.save(files[s], scores, c2c)
        dataset = {"name": split.name, "fingerprint": split.fingerprint}
        config = {"method": name, "model": {"frames": 12}, "train": {"epochs": 0 if zero_shot else 5,
                                                                     "lr": 1e-4, "batch_size": 128}}
        rec = build_record(
            method=name, config=config, dataset=dataset, backbone={"name": "ViT-B-32", "pretrained": "openai"},
            score_files=files, record_path=run_dir / "record.json", transductive=transductive,
            zero_shot=zero_shot, checkpoint_selection="none" if zero_shot else "validation",
            reranked=reranking is not None, reranking=reranking,
            cost={**machine, "parameters": params, "gflops_per_clip": gflops, "eval_clips_per_s": cps,
                  "train_time_s": train_s, "peak_memory_mb": 9000.0},
            notes="synthetic scores generated by dvtr_bench.leaderboard.example; not a real result")
        return write_record(rec, run_dir / "record.json")

    ds = split
    for i, (name, signal, trans, rr, zs, params, gflops, cps, train_s) in enumerate(_METHODS):
        folder = f"{i:02d}-{name.replace(' ', '-')}" + (f"-{rr}" if rr else "")
        paths.append(one(name, signal, trans, rr, zs, params, gflops, cps, train_s, ds, folder))

    if with_problems:
        other = _ImaginarySplit(f"other_{seed:02d}", n_clips, captions_per_clip, name="example-other")
        paths.append(one("meanP", 2.0, False, None, False, 151_277_313, 53.1, 400.0, 5400.0, other,
                         "90-other-dataset"))
        # An edited number: schema-valid and self-consistent, but not what the score files give.
        edited = one("seqLSTM", 1.9, False, None, False, 160_000_000, 53.2, 390.0, 5900.0, ds, "91-edited")
        rec = json.loads(edited.read_text())
        for run in rec["runs"]:
            run["metrics"]["t2v_r1"] += 5.0
            run["metrics"]["rsum"] += 5.0
            run["metrics"]["mr"] = run["metrics"]["rsum"] / 6
        for k in ("t2v_r1", "rsum", "mr"):
            rec["summary"]["mean"][k] = float(np.mean([r["metrics"][k] for r in rec["runs"]]))
        edited.write_text(json.dumps(rec, indent=2) + "\n")
        paths.append(edited)
        # A replaced score file: the recorded sha256 no longer matches.
        replaced = one("tightTransf", 2.1, False, None, False, 170_000_000, 80.0, 40.0, 9000.0, ds, "92-replaced")
        s, c2c = _scores(rng, n_clips, captions_per_clip, 3.0)
        split.save(replaced.parent / "scores_seed1.npz", s, c2c)
        paths.append(replaced)
        # An invalid record: a required field missing and a recall above 100.
        bad_dir = out / "93-invalid"
        bad_dir.mkdir(parents=True, exist_ok=True)
        rec = json.loads(paths[1].read_text())
        del rec["cost"]
        rec["runs"][0]["metrics"]["v2t_r10"] = 140.0
        (bad_dir / "record.json").write_text(json.dumps(rec, indent=2) + "\n")
        paths.append(bad_dir / "record.json")
        # A record that claims the main test split for scores computed on the other one (edited by hand:
        # build_record refuses to write it). Only the score files' clip digests can tell.
        moved = out / "94-other-split"
        shutil.copytree(paths[6].parent, moved)
        rec = json.loads((moved / "record.json").read_text())
        rec["method"] = "X-Pool"
        rec["dataset"].update(name=split.name, fingerprint=split.fingerprint)
        (moved / "record.json").write_text(json.dumps(rec, indent=2) + "\n")
        paths.append(moved / "record.json")
        # A record cut short (a failed copy): unreadable, and listed as such rather than skipped.
        cut = out / "95-truncated"
        cut.mkdir(parents=True, exist_ok=True)
        text = paths[1].read_text()
        (cut / "record.json").write_text(text[: len(text) // 3])
        paths.append(cut / "record.json")
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Write example dvtr result records from synthetic scores.")
    ap.add_argument("--out", required=True, help="folder to write the example runs into")
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--with-problems", action="store_true",
                    help="also write records the leaderboard must refuse or flag")
    args = ap.parse_args(argv)
    for p in make_example_records(args.out, n_clips=args.clips, seed=args.seed, with_problems=args.with_problems):
        print(p)


if __name__ == "__main__":
    main()
