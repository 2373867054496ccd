"""Test data made on the fly, for the test suite, the benchmarks and the docs: never imported by the runtime layers.

- ``footage``    ``synth_footage(...)``: a ``dvtr synth`` output folder made once per process; ``write_video``,
                 ``textured``: tiny hand-made videos for decoder and segmenter edge cases
- ``learnable``  small in-memory datasets whose captions describe their frames, so a model can learn them
"""
