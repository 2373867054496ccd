"""The open_clip backbone every method shares: frame encoder, text encoder, tokenizer, frame preprocessing.

* Any open_clip model name (``open_clip.list_models()``) plus the tiny ``dvtr-tiny`` config shipped with dvtr
  (``configs/dvtr-tiny.json``, registered with ``open_clip.add_model_config`` on import of this module).
* ``pretrained``: an open_clip tag (``"openai"``, ``"laion2b_s34b_b79k"``, ... see ``open_clip.list_pretrained()``),
  the path of a local checkpoint (plain, ``module.``-prefixed or ``.safetensors`` state dict; a dvtr training
  checkpoint (``best.pt``: its ``backbone.model.*`` keys) and a CLIP4Clip checkpoint's ``clip.*`` keys are accepted too), or None
  for random initialisation.
* A local checkpoint is identified before loading: its sha256 is compared with the release hashes open_clip knows
  (OpenAI's files carry theirs in their download address), and a TorchScript archive can only be one of OpenAI's
  releases. Weights released for a QuickGELU model are refused on a GELU model (and the reverse), with the model
  name to pass instead: the same weights with the other activation give other scores. A state dict whose shapes do
  not fit the model is refused with the architecture its shapes imply. ``Backbone.weights_sha256`` and
  ``Backbone.quick_gelu`` name exactly what ran.
* Text is truncated at protocol v1's 32 tokens. The model is created with a 32-position text context and a
  pretrained 77-position embedding is cut to its first 32 rows (what CLIP4Clip does by slicing), not
  interpolated as open_clip's own loader would: interpolation would give token 5 the embedding of position ~12.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from open_clip.factory import load_state_dict
from open_clip.model import CLIP, convert_to_custom_text_state_dict, get_model_preprocess_cfg, resize_pos_embed
from torch import nn

from dvtr_bench.errors import ConfigError
from dvtr_bench.provenance import file_sha256
from dvtr_bench.models.base import FrameSpec
from dvtr_bench.protocol import v1

CONFIG_DIR = Path(__file__).with_name("configs")
TINY = "dvtr-tiny"
_registered = False


def register_configs() -> None:
    """Make dvtr's own open_clip configs (``dvtr-tiny``) known to open_clip; idempotent."""
    global _registered
    if not _registered:
        open_clip.add_model_config(CONFIG_DIR)
        _registered = True


register_configs()


def _is_none(pretrained: Any) -> bool:
    return pretrained is None or (isinstance(pretrained, str) and pretrained.strip().lower() in ("", "none", "null"))


class Backbone(nn.Module):
    """An open_clip model wrapped with the tokenizer and frame spec the methods need.

    ``embed_dim`` is the joint embedding width; ``text_width`` the text transformer's width (CLIP4Clip initialises
    its temporal transformer from the first text blocks when the two agree).
    """

    def __init__(self, model: nn.Module, tokenizer: Any, frame_spec: FrameSpec, name: str, pretrained: str | None,
                 context_length: int, quick_gelu: bool = False, weights_sha256: str | None = None):
        super().__init__()
        self.quick_gelu = quick_gelu
        self.weights_sha256 = weights_sha256
        self.model = model
        self._tokenizer = tokenizer
        self.frame_spec = frame_spec
        self.model_name = name
        self.pretrained = pretrained
        self.context_length = context_length
        # The width of the joint space, read from the projections so it works for CLIP and CustomTextCLIP alike.
        with torch.no_grad():
            self.embed_dim = int(model.encode_text(torch.zeros(1, context_length, dtype=torch.long)).shape[-1])

    # ---- properties the methods read ----------------------------------------------------------------------
    @property
    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale

    @property
    def has_text_tokens(self) -> bool:
        """True when token-level text outputs are available (open_clip's built-in CLIP text tower)."""
        return isinstance(self.model, CLIP)

    @property
    def text_width(self) -> int | None:
        return int(self.model.transformer.width) if isinstance(self.model, CLIP) else None

    def text_blocks(self) -> list[nn.Module]:
        """The text transformer's residual blocks (CLIP4Clip copies the first ones into its new modules)."""
        return list(self.model.transformer.resblocks) if isinstance(self.model, CLIP) else []

    def text_positional_embedding(self) -> torch.Tensor | None:
        return self.model.positional_embedding if isinstance(self.model, CLIP) else None

    # ---- encoders ------------------------------------------------------------------------------------------
    def tokenize(self, captions: list[str], context_length: int | None = None) -> torch.Tensor:
        """Captions -> ``LongTensor[B, 32]``; longer captions are cut and keep their end token.

        A shorter ``context_length`` (short phrases) gives ``[B, context_length]``; the text tower reads any length
        up to its own.
        """
        if isinstance(captions, str):
            raise TypeError("tokenize expects a list of captions, not a single string")
        n = self.context_length if context_length is None else int(context_length)
        if not 2 <= n <= self.context_length:
            raise ValueError(f"context_length must lie in [2, {self.context_length}], got {n}")
        return self._tokenizer(list(captions), context_length=n)

    # set by dvtr_bench.engine.execution.apply_model_options: frames then enter the image tower channels-last
    channels_last: bool = False

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, 3, S, S]`` preprocessed frames -> ``[N, D]`` per-frame CLS embeddings (after ln_post + proj)."""
        if self.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        return self.model.encode_image(frames)

    def encode_text(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``[B, L]`` tokens -> (sentence ``[B, D]`` = the pooled (EOT) output, tokens ``[B, L, D]`` or None).

        Token outputs are the text transformer's outputs after ``ln_final`` and the text projection, every
        position included (the caller masks padding with :meth:`token_mask`).
        """
        m = self.model
        if not isinstance(m, CLIP):
            return m.encode_text(tokens), None
        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast)
        x = x + m.positional_embedding[: x.shape[1]].to(cast)
        mask = m.attn_mask
        if mask is not None:
            mask = mask[: x.shape[1], : x.shape[1]]
        x = m.transformer(x, attn_mask=mask)
        x = m.ln_final(x)
        pooled = open_clip.transformer.text_global_pool(x, tokens, m.text_pool_type,
                                                        eos_token_id=getattr(m, "text_eos_id", None))
        proj = m.text_projection
        if proj is not None:
            if isinstance(proj, nn.Linear):
                pooled, x = proj(pooled), proj(x)
            else:
                pooled, x = pooled @ proj, x @ proj
        return pooled, x

    @staticmethod
    def token_mask(tokens: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` bool: True for real tokens (start token .. end token), False for padding."""
        return tokens != 0


# ---------------------------------------------------------------------------------------------------------------

def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _strip_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept checkpoints saved by DDP (``module.``), by dvtr (``backbone.model.``) and CLIP4Clip forks (``clip.``)."""
    sd = dict(state_dict)
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    for prefix in ("backbone.model.", "clip."):
        if any(k.startswith(prefix) for k in sd) and "visual.conv1.weight" not in sd and "visual.proj" not in sd:
            sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
            break
    return sd


def known_releases() -> dict[str, tuple[str, str, bool]]:
    """sha256 -> (open_clip model, tag, quick_gelu) for every release whose download address carries its hash."""
    import re

    out: dict[str, tuple[str, str, bool]] = {}
    for model, tag in open_clip.list_pretrained():
        cfg = open_clip.get_pretrained_cfg(model, tag) or {}
        m = re.search(r"/([0-9a-f]{64})/", cfg.get("url", ""))
        # the plain name (ViT-B-32) and its -quickgelu twin share the file: keep the one that matches the weights
        if m and (m.group(1) not in out or model.endswith("-quickgelu") == bool(cfg.get("quick_gelu"))):
            out[m.group(1)] = (model, tag, bool(cfg.get("quick_gelu", False)))
    return out


def _is_torchscript(path: str) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or n.split("/", 1)[-1].startswith("code/") for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def model_uses_quick_gelu(name: str) -> bool:
    return bool((open_clip.get_model_config(name) or {}).get("quick_gelu", False))


def _quickgelu_twin(name: str, want: bool) -> str | None:
    base = name[: -len("-quickgelu")] if name.endswith("-quickgelu") else name
    twin = f"{base}-quickgelu" if want else base
    if twin in open_clip.list_models() and model_uses_quick_gelu(twin) == want:
        return twin
    return None


def check_checkpoint_identity(name: str, path: str, sha256: str) -> None:
    """Refuse a checkpoint released for another activation than model ``name`` uses, naming the model to pass."""
    uses = model_uses_quick_gelu(name)
    release = known_releases().get(sha256)
    if release is not None:
        need, origin = release[2], f"open_clip's {release[0]} / {release[1]!r} release (sha256 {sha256[:12]}…)"
    elif _is_torchscript(path):
        need, origin = True, "a TorchScript archive, as only OpenAI's CLIP releases are"
    else:
        return
    if need != uses:
        twin = _quickgelu_twin(name, need)
        act = "QuickGELU" if need else "GELU"
        fix = (f"pass --backbone {twin}" if twin else
               f"use an open_clip model whose config sets quick_gelu={str(need).lower()}")
        raise ConfigError(f"checkpoint {path} is {origin}, trained with {act}, but {name} uses "
                          f"{'QuickGELU' if uses else 'GELU'}: the same weights would give other scores. {fix}.")


def _shape_summary(sd: dict[str, torch.Tensor]) -> str:
    """What a CLIP state dict's shapes say about its architecture (vision width/patch/image size, text width)."""
    parts = []
    conv = sd.get("visual.conv1.weight")
    pos = sd.get("visual.positional_embedding")
    if conv is not None and conv.ndim == 4:
        parts.append(f"vision width {conv.shape[0]}, patch {conv.shape[-1]}")
        if pos is not None and pos.ndim == 2:
            grid = int(round((pos.shape[0] - 1) ** 0.5))
            parts.append(f"image size {grid * int(conv.shape[-1])}")
    layers = {k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")}
    if layers:
        parts.append(f"{len(layers)} vision layers")
    tok = sd.get("token_embedding.weight")
    if tok is not None and tok.ndim == 2:
        parts.append(f"text width {tok.shape[1]}")
    proj = sd.get("text_projection")
    if proj is not None and proj.ndim == 2:
        parts.append(f"embedding {proj.shape[1]}")
    return ", ".join(parts) or "not a CLIP state dict"


def _load_weights(model: nn.Module, path: str, context_length: int, resize_ok: bool = False) -> None:
    try:
        sd = load_state_dict(path, device="cpu", weights_only=True)
    except Exception:  # an OpenAI TorchScript archive needs a full (non weights-only) load
        try:
            sd = load_state_dict(path, device="cpu", weights_only=False)
        except Exception as e:
            raise ConfigError(f"cannot read checkpoint {path}: {e}") from e
    if isinstance(sd, dict) and isinstance(sd.get("model"), dict):
        sd = sd["model"]  # a dvtr training checkpoint (best.pt / last.pt)
    if not isinstance(sd, dict) or not sd:
        raise ConfigError(f"checkpoint {path} holds no state dict")
    sd = _strip_prefixes(sd)
    if "positional_embedding" in sd and not hasattr(model, "positional_embedding"):
        sd = convert_to_custom_text_state_dict(sd)
    if "logit_scale" in sd and model.logit_scale.ndim != sd["logit_scale"].ndim:
        sd["logit_scale"] = sd["logit_scale"].reshape(model.logit_scale.shape)
    if "logit_bias" not in sd and getattr(model, "logit_bias", None) is not None:
        sd["logit_bias"] = torch.zeros_like(model.logit_bias)
    for key in ("input_resolution", "context_length", "vocab_size", "text.transformer.embeddings.position_ids"):
        sd.pop(key, None)
    for key in ("positional_embedding", "text.positional_embedding"):
        if key in sd and sd[key].shape[0] > context_length:
            sd[key] = sd[key][:context_length]  # keep the first positions: the tokens we feed sit there
    pos = sd.get("visual.positional_embedding")
    own_pos = getattr(getattr(model, "visual", None), "positional_embedding", None)
    if not resize_ok and pos is not None and own_pos is not None and pos.shape != own_pos.shape:
        raise ConfigError(f"checkpoint {path} was trained at another image size ({_shape_summary(sd)}) than "
                          f"the model's ({_shape_summary(model.state_dict())}): set the image size it was trained "
                          "at (recipe model.image_size), or ask for the size you want explicitly to interpolate "
                          "the position grid")
    resize_pos_embed(sd, model)  # vision grid only, when a different image size was asked for
    own = model.state_dict()
    wrong = [k for k, v in sd.items() if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise ConfigError(
            f"checkpoint {path} does not fit the model: {len(wrong)} tensors have other shapes (e.g. {wrong[0]}: "
            f"{tuple(sd[wrong[0]].shape)} in the file, {tuple(own[wrong[0]].shape)} in the model). The file's shapes "
            f"say: {_shape_summary(sd)}; the model's: {_shape_summary(own)}. Pass the --backbone it was trained "
            "with.")
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("attn_mask")]
    if missing or unexpected:
        raise ConfigError(
            f"checkpoint {path} does not fit the model: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]}). Pass the --backbone it was trained with "
            "(e.g. ViT-B-32-quickgelu for OpenAI's own .pt files)."
        )


def create_backbone(name: str = "ViT-B-32", pretrained: str | os.PathLike | None = "openai",
                    context_length: int = v1.MAX_TOKENS, cache_dir: str | None = None,
                    device: str | torch.device = "cpu", image_size: int | None = None) -> Backbone:
    """Create an open_clip backbone with a ``context_length``-token text tower.

    ``image_size`` overrides the vision tower's input size (pretrained patch-position grids are interpolated by
    open_clip's loader); the frame spec follows it.

    Raises :class:`ConfigError` for an unknown model, an unknown tag, a missing checkpoint file, or weights that
    cannot be fetched (no network, or ``HF_HUB_OFFLINE=1`` with nothing in the cache), saying what to do.
    """
    register_configs()
    if name not in open_clip.list_models():
        raise ConfigError(f"unknown backbone {name!r}: use an open_clip model name (open_clip.list_models()), "
                          f"e.g. ViT-B-32, ViT-B-16, or {TINY!r} for the tiny CPU config")
    tag_cfg: dict[str, Any] = {}
    ckpt: str | None = None
    label: str | None = None
    sha: str | None = None
    if not _is_none(pretrained):
        pretrained = str(pretrained)
        label = pretrained
        tag_cfg = open_clip.get_pretrained_cfg(name, pretrained) or {}
        if tag_cfg:
            try:
                ckpt = open_clip.pretrained.download_pretrained(tag_cfg, cache_dir=cache_dir)
            except Exception as e:
                why = "HF_HUB_OFFLINE is set and they are not in the cache" if _offline() else f"{type(e).__name__}: {e}"
                raise ConfigError(
                    f"cannot fetch the {name} weights for pretrained tag {pretrained!r} ({why}). Run once with "
                    f"network access so open_clip caches them (python -c \"import open_clip; open_clip.create_model("
                    f"'{name}', pretrained='{pretrained}')\"), or download the checkpoint and pass its path as "
                    "--pretrained /path/to/checkpoint, or use --pretrained none for random initialisation."
                ) from e
            if not ckpt:
                raise ConfigError(f"open_clip has no download location for {name} / {pretrained!r}")
        elif Path(pretrained).expanduser().is_file():
            ckpt = str(Path(pretrained).expanduser())
            sha = file_sha256(ckpt)
            check_checkpoint_identity(name, ckpt, sha)
        elif "/" in pretrained or "\\" in pretrained or Path(pretrained).suffix:
            raise ConfigError(f"checkpoint file not found: {pretrained}. Give the path of a saved state dict "
                              "(.pt/.bin/.pth/.safetensors), an open_clip tag, or none.")
        else:
            tags = [t for m, t in open_clip.list_pretrained() if m == name]
            raise ConfigError(f"{pretrained!r} is neither a pretrained tag of {name} (known: {tags or 'none'}) "
                              "nor an existing checkpoint file")
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # open_clip logs "initialized randomly" on the root logger; the library is quiet
    try:
        model = open_clip.create_model(
            name, pretrained=None, force_context_length=context_length, force_image_size=image_size,
            force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
            pretrained_image=False, pretrained_text=False, device="cpu",
        )
    finally:
        logging.disable(previous)
    if ckpt is not None:
        _load_weights(model, ckpt, context_length, resize_ok=image_size is not None)
        sha = sha or file_sha256(ckpt)
    pcfg = dict(get_model_preprocess_cfg(model))
    size = pcfg.get("size", 224)
    size = size[0] if isinstance(size, (tuple, list)) else size
    spec = FrameSpec(
        image_size=int(size),
        mean=tuple(float(x) for x in tag_cfg.get("mean", pcfg.get("mean", open_clip.OPENAI_DATASET_MEAN))),
        std=tuple(float(x) for x in tag_cfg.get("std", pcfg.get("std", open_clip.OPENAI_DATASET_STD))),
        interpolation=str(tag_cfg.get("interpolation", pcfg.get("interpolation", "bicubic"))),
    )
    tokenizer = open_clip.get_tokenizer(name, context_length=context_length)
    quick = model_uses_quick_gelu(name) or bool(tag_cfg.get("quick_gelu", False))
    bb = Backbone(model, tokenizer, spec, name=name, pretrained=label, context_length=context_length,
                  quick_gelu=quick, weights_sha256=sha)
    return bb.to(device)


def frame_mask_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x[B, T, D]`` over the real frames of ``mask[B, T]`` (a clip with no real frame gives zeros)."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


def l2n(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)
