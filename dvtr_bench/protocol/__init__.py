"""Protocol v1: constants, metrics engine, evaluation runner and result records.

Modules (imported on demand, so ``import dvtr_bench.protocol`` stays cheap):

- ``v1``           constants: frames, frame size, token length, seeds, metric set, splits, ranking key
- ``metrics``      ``compute_metrics(scores, caption_to_clip)`` / ``evaluate(...)``: the only metric code
- ``scores``       ``save_scores`` / ``load_scores``: deterministic ``.npz`` score matrices
- ``fingerprint``  ``dataset_fingerprint(ds["test"])``: sha256 of a split's clips, captions and frame bytes
- ``record``       ``build_record`` / ``validate_record`` / ``write_record`` / ``read_record``: result records
- ``runner``       evaluation of a frozen method on a split (owned by the trainer)

docs/protocol.md defines every rule and formula.
"""
