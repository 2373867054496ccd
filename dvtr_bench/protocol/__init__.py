"""The protocol as plain code: the specification every other layer follows.

Modules (imported on demand, so ``import dvtr_bench.protocol`` stays cheap):

- ``v1``           constants: frames, frame size, token length, seeds, metric set, splits, ranking key
- ``v2``           the current protocol version (protocol 1 with video->text ranking clips) and its convention
- ``metrics``      ``compute_metrics(scores, caption_to_clip)`` / ``evaluate(...)``: the only metric code
- ``scores``       ``save_scores`` / ``load_scores``: deterministic ``.npz`` score matrices, bound to their split
- ``fingerprint``  ``dataset_fingerprint(ds["test"])``: sha256 of a split's clips, captions and frame bytes
- ``binding``      ``TestSplit`` / ``check_against_split``: a score file checked against the split it claims
- ``record``       ``build_record`` / ``validate_record`` / ``write_record`` / ``read_record``: result records

This layer imports numpy (and, for fingerprints, ``datasets``) but neither torch nor any other dvtr layer, so the
leaderboard, and a user without torch, can depend on it. Running a method on a split is the engine's business
(:mod:`dvtr_bench.engine.evaluate`). docs/protocol.md defines every rule and formula.
"""
