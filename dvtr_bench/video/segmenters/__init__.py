"""Segmenters: turn one source video into clip spans. One module per segmenter, one registry.

- ``base``         the interface (:class:`Segmenter`, :class:`Span`, :class:`Transition`), ``limit_lengths`` and the
                   registry (``register_segmenter``, ``SEGMENTERS``, ``make_segmenter``, ``segmenter_params``)
- ``shots``        ``ShotSegmenter``: shot boundaries detected while decoding (the default)
- ``windows``      ``WindowSegmenter``: fixed windows
- ``annotations``  ``AnnotationSegmenter``: the caption records' own spans
- ``telemetry``    ``TelemetrySegmenter``: flight phases from the DJI .SRT sidecar

Importing this package registers every module in it, so a new segmenter is one new module here (see
docs/build-dataset.md, "Adding a segmenter").
"""

from __future__ import annotations

import importlib
import pkgutil

from dvtr_bench.video.segmenters.base import (SEGMENTERS, Segmenter, SegmenterParam, Span, Transition, limit_lengths,
                                              make_segmenter, register_segmenter, segmenter_class, segmenter_names,
                                              segmenter_params)
# The built-in ones first and in this order: it is the order of the choices in ``dvtr build-dataset --help``.
from dvtr_bench.video.segmenters.shots import ShotSegmenter
from dvtr_bench.video.segmenters.windows import WindowSegmenter
from dvtr_bench.video.segmenters.annotations import AnnotationSegmenter
from dvtr_bench.video.segmenters.telemetry import TelemetrySegmenter

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")
del _info

#: The segmenter a build uses unless told otherwise.
DEFAULT_SEGMENTER = ShotSegmenter.name

__all__ = ["DEFAULT_SEGMENTER", "SEGMENTERS", "AnnotationSegmenter", "Segmenter", "SegmenterParam", "ShotSegmenter",
           "Span", "TelemetrySegmenter", "Transition", "WindowSegmenter", "limit_lengths", "make_segmenter", "register_segmenter",
           "segmenter_class", "segmenter_names", "segmenter_params"]
