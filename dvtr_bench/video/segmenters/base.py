"""The segmenter interface and the registry every segmenter is created through.

Every segmenter is a small class behind one interface, in the spirit of PySceneDetect's detectors but shaped
for a single decode pass shared with frame sampling:

* :meth:`Segmenter.start` is called once with the probed :class:`VideoInfo` (and the video's caption records).
  Segmenters whose spans do not depend on pixels (fixed windows, annotation-aligned) return all their spans
  here, which lets the build decode without converting any frame it will not store.
* :meth:`Segmenter.push` is called for every decoded frame with a tiny YUV image, only when
  ``uses_frames`` is True; it returns the spans that are final so far, so the caller can sample their frames
  and forget the frames before them (bounded memory for hours-long takes).
* :meth:`Segmenter.finish` closes the last span.

Each clip row records the segmenter's ``name`` and ``params()``, so a dataset says how it was cut.

A segmenter becomes usable by name (``make_segmenter``, ``BuildConfig``, ``dvtr build-dataset --segmenter``) by
decorating its class with :func:`register_segmenter`. Its parameters are its constructor's keyword parameters:
:func:`segmenter_params` reads them (with their defaults and types) from the signature, so there is no second
list of them to keep in step.
"""

from __future__ import annotations

import difflib
import inspect
import math
import types
import typing
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence, TypeVar

import numpy as np

from dvtr_bench.errors import ConfigError

if TYPE_CHECKING:
    from dvtr_bench.video.probe import VideoInfo


@dataclass(frozen=True)
class Span:
    """A clip candidate: [start_s, end_s) in seconds from the first frame; frames [start_frame, end_frame)."""

    start_s: float
    end_s: float
    start_frame: int | None = None
    end_frame: int | None = None
    clip_id: str | None = None                      # given by annotation-aligned spans
    captions: tuple[str, ...] | None = None         # idem
    label: str | None = None                        # idem
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Transition:
    """A detected shot boundary. ``start_frame``..``end_frame`` (inclusive) are the mixed frames of a gradual
    transition; for a hard cut both equal the first frame of the new shot (the convention of shots.json)."""

    kind: str            # "cut" | "gradual"
    start_frame: int
    end_frame: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def limit_lengths(start_s: float, end_s: float, min_len: float | None, max_len: float | None) -> list[tuple[float, float]]:
    """Apply clip-length limits to one span: drop it when shorter than ``min_len``; cut it into the fewest
    equal pieces no longer than ``max_len`` (equal pieces, so no stub clip is left at the end)."""
    length = end_s - start_s
    if length <= 0 or (min_len and length < min_len):
        return []
    if not max_len or length <= max_len:
        return [(start_s, end_s)]
    n = math.ceil(length / max_len - 1e-9)
    step = length / n
    return [(start_s + k * step, start_s + (k + 1) * step if k < n - 1 else end_s) for k in range(n)]


class Segmenter(ABC):
    """Interface of every segmenter (see the module docstring for the call sequence).

    Class attributes a segmenter sets: ``name`` (its registry key, recorded in every clip row), ``description``
    (one line, shown by ``dvtr build-dataset --help``), ``uses_frames`` (True to receive every decoded frame) and
    ``spans_from_records`` (True when its spans are the caption records' own spans and carry their captions: the
    build then needs annotations, takes captions from the spans instead of aligning records, and never cuts
    such a span with ``max_len``), ``uses_telemetry`` (True to get the video's telemetry track, from its DJI
    .SRT sidecar, as ``start(info, records, telemetry=track)``).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    uses_frames: ClassVar[bool] = False
    spans_from_records: ClassVar[bool] = False
    # True to receive the video's telemetry track: start(info, records, telemetry=track)
    uses_telemetry: ClassVar[bool] = False

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The parameters that determine the spans, recorded in every clip row."""

    def start(self, info: VideoInfo, records: Sequence[Any] = ()) -> list[Span] | None:
        """Begin a video. Return all spans when they are known without pixels, else None."""
        self.info = info
        self.transitions: list[Transition] = []
        return None

    def push(self, index: int, t: float, tiny: np.ndarray) -> list[Span]:
        """Consume one frame (only called when ``uses_frames``); return spans that are now final."""
        return []

    def finish(self, n_frames: int, end_s: float) -> list[Span]:
        """No more frames: return the remaining spans. ``end_s`` is the end of the last frame."""
        return []

    def keep_from(self) -> int:
        """Index of the first frame a span not yet returned may still use (frames before it can be freed)."""
        return 0


# -------------------------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type[Segmenter]] = {}

#: Registered segmenter classes by name, in registration order (read-only: register with the decorator).
SEGMENTERS: Mapping[str, type[Segmenter]] = types.MappingProxyType(_REGISTRY)

S = TypeVar("S", bound=type[Segmenter])


def register_segmenter(cls: S) -> S:
    """Class decorator: make a :class:`Segmenter` subclass available by its ``name``.

    The class must set ``name`` and a one-line ``description``, and take its parameters as named constructor
    parameters (no ``*args``/``**kwargs``), since those are what :func:`segmenter_params` describes and what
    :func:`make_segmenter` checks user input against.
    """
    if not (isinstance(cls, type) and issubclass(cls, Segmenter)):
        raise TypeError(f"{cls!r} is not a Segmenter subclass")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"segmenter class {cls.__qualname__} must set a class attribute name")
    description = getattr(cls, "description", None)
    if not isinstance(description, str) or not description.strip() or "\n" in description.strip():
        raise TypeError(f"segmenter {name!r} must set a one-line class attribute description")
    for p in _init_parameters(cls):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            stars = "*" if p.kind is p.VAR_POSITIONAL else "**"
            raise TypeError(f"segmenter {name!r}: constructor parameters must be named, not {stars}{p.name}")
    if _REGISTRY.get(name, cls) is not cls:
        raise ValueError(f"segmenter name {name!r} is already registered by {_REGISTRY[name].__qualname__}")
    _REGISTRY[name] = cls
    return cls


def segmenter_names() -> tuple[str, ...]:
    """Names of the registered segmenters, in registration order (the built-in ones first)."""
    return tuple(_REGISTRY)


def segmenter_class(name: str) -> type[Segmenter]:
    """The class registered as ``name``; an unknown name is a ConfigError that suggests the nearest one."""
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(f"unknown segmenter {name!r}{_did_you_mean(name, _REGISTRY)}; "
                          f"choose one of {', '.join(_REGISTRY)}")
    return cls


@dataclass(frozen=True)
class SegmenterParam:
    """One constructor parameter of a segmenter: its name, default and type."""

    name: str
    default: Any                # inspect.Parameter.empty when the parameter has none
    annotation: Any             # the resolved type hint, or Any when the constructor gives none

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    @property
    def optional(self) -> bool:
        """True when None is a meaningful value (``float | None``), not a stand-in for the default."""
        return _accepts(None, self.annotation)

    @property
    def type_name(self) -> str:
        return _type_name(self.annotation)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type_name,
                **({"required": True} if self.required else {"default": self.default})}


def segmenter_params(name: str) -> dict[str, SegmenterParam]:
    """The parameters segmenter ``name`` accepts, in constructor order, read from its constructor signature."""
    cls = segmenter_class(name)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - an unresolvable hint only costs the type check, not the segmenter
        hints = {}
    return {p.name: SegmenterParam(p.name, p.default, hints.get(p.name, Any)) for p in _init_parameters(cls)}


def _init_parameters(cls: type) -> list[inspect.Parameter]:
    """The constructor's parameters after ``self``; none when the class keeps object's constructor (whose
    signature, ``*args, **kwargs``, would read as "accepts anything")."""
    if cls.__init__ is object.__init__:
        return []
    return list(inspect.signature(cls.__init__).parameters.values())[1:]


def make_segmenter(name: str, **params: Any) -> Segmenter:
    """Instantiate a segmenter by name with keyword parameters.

    Unknown names, unknown parameters (with the nearest accepted name suggested), values of the wrong type and
    values the segmenter itself rejects are all one :class:`ConfigError`. ``None`` stands for "the default"
    except for parameters where None is a value of its own (``min_len=None``: no minimum).
    """
    cls = segmenter_class(name)
    specs = segmenter_params(name)
    unknown = [k for k in params if k not in specs]
    if unknown:
        hints = {k: _did_you_mean(k, specs) for k in unknown}
        msg = "; ".join(f"segmenter {name!r} has no parameter {k!r}{hint}" for k, hint in hints.items())
        if not all(hints.values()):
            msg += f"; its parameters are {', '.join(specs) or 'none'}"
        raise ConfigError(msg)
    kwargs: dict[str, Any] = {}
    for k, v in params.items():
        spec = specs[k]
        if v is None and not spec.optional:
            continue
        if not _accepts(v, spec.annotation):
            raise ConfigError(f"segmenter {name!r}: parameter {k!r} must be {spec.type_name}, got {v!r}")
        kwargs[k] = v
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad parameters for segmenter {name!r}: {exc}") from None


def _did_you_mean(word: Any, choices: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return None


def _accepts(value: Any, tp: Any) -> bool:
    """Whether ``value`` is acceptable for a parameter typed ``tp``. Numbers are checked the way a JSON or YAML
    config gives them: an int is a valid float, an integral float a valid int; a bool is never a number."""
    args = _union_args(tp)
    if args is not None:
        return any(_accepts(value, a) for a in args)
    if tp is Any or tp is inspect.Parameter.empty:
        return True
    if tp is type(None) or tp is None:
        return value is None
    if isinstance(value, bool):
        return tp is bool
    if tp is float:
        return isinstance(value, (int, float))
    if tp is int:
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True   # a generic alias (list[str], ...): left to the constructor


def _type_name(tp: Any) -> str:
    args = _union_args(tp)
    if args is not None:
        return " or ".join(_type_name(a) for a in args)
    if tp is type(None) or tp is None:
        return "None"
    if tp is Any:
        return "any value"
    return getattr(tp, "__name__", str(tp))
