"""MSAM (Huang, Chen, Liu 2025), re-implemented from the authors' released code (huangjh98/ASLVT).

Scoring path (used at training and evaluation):

1. Frames: CLIP frame embeddings x_i -> CLIP4Clip seqTransf header f_i = x_i + TT(x + P)_i, normalised.
2. Text-conditioned frame pooling, softmax temperature tau = 0.01 over the clip's *real* frames:
   alpha_i = softmax_i(<f_i, t> / tau), v = sum_i alpha_i f_i   (t = normalised sentence embedding).
3. Gated fusion with a video aggregate u: g = sigmoid(W2 ReLU(W1 v)) / 0.7,
   z = g v + (1 - g) u + v, s(t, video) = <z / |z|, t>; training logits are exp(lambda) * 0.4 * s.
   - default (protocol-compliant): u = the clip's own aggregate, norm(mean_i f_i) over real frames (the release
     computes this embedding and passes it to the pooling module, which leaves it unused), so a score depends
     only on its pair;
   - ``transductive_scoring=True`` (the release): u_b = sum_k beta_bk v_bk with beta_b = softmax_k(<v_bk, t_k> /
     tau) over the captions k scored together (the training batch; at evaluation blocks of ``eval_text_block`` =
     32 captions, the release's ``batch_size_val``). The method is then marked transductive.

Training-only heads (regularisers acting through the shared encoders): per modality a 7-slot structured
self-attention (PIENet) over the local features (normalised CLIP frame embeddings before the temporal header;
normalised text token outputs), gated by the global embedding, then shared heads give a diagonal Gaussian per slot:
mu = MLP(O), sigma = softplus(MLP(O)), E = norm(mu / sigma). Loss = InfoNCE + 1.0 * KL(N_video || N_text) summed
over slots and dims, averaged over the batch + 0.01 * mean_b |E_b E_b^T - I|_1 / K^2 averaged over modalities.

Differences from the release: padded frames are masked in the frame softmax and in the video slot attention, and
padding tokens are masked in the text slot attention (the release attends to both); the default scoring is the
protocol-compliant one above. Hidden sizes of the heads are fixed fractions of the embedding width (D/2 for the
slot attention and the mean head, D/8 for the variance head), equal to the release's 256/256/64 at D = 512.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dvtr_bench.models.backbone import frame_mask_mean, l2n
from dvtr_bench.models.base import Embedding, symmetric_infonce
from dvtr_bench.models.common import FrameMethod, chunked_over_text, init_new_module
from dvtr_bench.models.registry import register
from dvtr_bench.models.methods.seqtransf import SeqTransfHeader


class StructuredSelfAttention(nn.Module):
    """Lin et al. 2017: A = softmax_seq(W_b tanh(W_a X^T)), K slots, no biases."""

    def __init__(self, slots: int, d: int, hidden: int):
        super().__init__()
        self.w_1 = nn.Linear(d, hidden, bias=False)
        self.w_2 = nn.Linear(hidden, slots, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x ``[B, L, D]``, mask ``[B, L]`` (True = real) -> slots ``[B, K, D]``."""
        a = self.w_2(torch.tanh(self.w_1(x)))  # [B, L, K]
        a = a.masked_fill(~mask[:, :, None], float("-inf"))
        a = torch.nan_to_num(F.softmax(a, dim=1), nan=0.0)
        return torch.einsum("blk,bld->bkd", a, x)


class PIENet(nn.Module):
    """The release's slot module: R = SSA(X); R' = Dropout(sigmoid(FC(R))); O = FC1(LN(R' * g))."""

    def __init__(self, slots: int, d: int, hidden: int, dropout: float = 0.2):
        super().__init__()
        self.attention = StructuredSelfAttention(slots, d, hidden)
        self.fc = nn.Linear(d, d)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, d)

    def forward(self, global_emb: torch.Tensor, local: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        r = self.dropout(torch.sigmoid(self.fc(self.attention(local, mask))))
        return self.fc1(self.layer_norm(r * global_emb[:, None, :]))


def mlp(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@register
class MSAM(FrameMethod):
    name = "msam"

    def __init__(self, backbone, temporal_layers: int = 4, pool_temperature: float = 0.01,
                 gate_divisor: float = 0.7, logit_multiplier: float = 0.4, slots: int = 7, slot_dropout: float = 0.2,
                 kl_weight: float = 1.0, diversity_weight: float = 0.01, transductive_scoring: bool = False,
                 eval_text_block: int = 32, pair_budget: int = 65536, **options):
        if options:
            raise TypeError(f"unknown msam options {sorted(options)}")
        super().__init__(backbone, max_frames=backbone.context_length)
        if not backbone.has_text_tokens and (kl_weight or diversity_weight):
            from dvtr_bench.errors import ConfigError
            raise ConfigError(f"msam's text slot heads need token outputs, which backbone {backbone.model_name} does "
                              "not expose; use an open_clip CLIP model or set kl_weight=0, diversity_weight=0")
        d = self.embed_dim
        self.header = SeqTransfHeader(backbone, layers=temporal_layers)
        # fusion gate (the release's AttentionFusionPooling.attention_fc)
        self.gate = nn.Sequential(nn.Linear(d, d // 2), nn.ReLU(), nn.Linear(d // 2, 1))
        self.pie_net_video = PIENet(slots, d, d // 2, slot_dropout)
        self.pie_net_text = PIENet(slots, d, d // 2, slot_dropout)
        self.mean_head = mlp([d, d // 2, d // 2, d])
        self.var_head = mlp([d, max(1, d // 8), d])
        # the release builds everything, then CLIP4Clip's init_weights re-initialises every new Linear/LayerNorm
        init_new_module(nn.ModuleList([self.gate, self.pie_net_video, self.pie_net_text, self.mean_head,
                                       self.var_head]))
        self.tau = pool_temperature
        self.gate_divisor = gate_divisor
        self.logit_multiplier = logit_multiplier
        self.slots = slots
        self.kl_weight = kl_weight
        self.diversity_weight = diversity_weight
        self.transductive = bool(transductive_scoring)
        self.eval_text_block = int(eval_text_block) if self.transductive else None
        self.pair_budget = pair_budget
        self.config = {"temporal_layers": temporal_layers, "pool_temperature": pool_temperature,
                       "gate_divisor": gate_divisor, "logit_multiplier": logit_multiplier, "slots": slots,
                       "slot_dropout": slot_dropout, "kl_weight": kl_weight, "diversity_weight": diversity_weight,
                       "transductive_scoring": self.transductive, "eval_text_block": self.eval_text_block,
                       "layers_copied_from_text": self.header.transformer.n_copied}

    # ---- encoders -------------------------------------------------------------------------------------------
    def encode_text(self, tokens: torch.Tensor) -> Embedding:
        sentence, tok = self.backbone.encode_text(tokens)
        out = {"text": sentence.float()}
        if self.training and tok is not None:  # only the training heads read token outputs
            out["tokens"] = tok.float()
            out["token_mask"] = self.backbone.token_mask(tokens)
        return out

    def encode_video_features(self, x: torch.Tensor, mask: torch.Tensor) -> Embedding:
        f = l2n(self.header(x, mask)) * mask[..., None].to(x.dtype)
        out = {"frames": f, "frame_mask": mask, "video": l2n(frame_mask_mean(f, mask))}
        if self.training:
            out["raw_frames"] = l2n(x) * mask[..., None].to(x.dtype)
        return out

    # ---- scoring --------------------------------------------------------------------------------------------
    def _pool(self, t: torch.Tensor, video: Embedding) -> torch.Tensor:
        """Text-conditioned pooled videos ``[Nv, Nt, D]`` for normalised texts ``t [Nt, D]``."""
        f, m = video["frames"], video["frame_mask"]
        sims = torch.einsum("vfd,td->vft", f, t) / self.tau
        sims = sims.masked_fill(~m[:, :, None], float("-inf"))
        alpha = torch.nan_to_num(F.softmax(sims, dim=1), nan=0.0)
        return torch.einsum("vft,vfd->vtd", alpha, f)

    def _fuse(self, t: torch.Tensor, v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """v ``[Nv, Nt, D]``, aggregate u ``[Nv, D]`` -> scores ``[Nt, Nv]``."""
        g = torch.sigmoid(self.gate(v)) / self.gate_divisor
        z = g * v + (1.0 - g) * u[:, None, :] + v
        return torch.einsum("vtd,td->tv", l2n(z), t)

    def _pairs(self, text: Embedding, video: Embedding) -> torch.Tensor:
        t = l2n(text["text"])
        return self._fuse(t, self._pool(t, video), video["video"])

    def _block(self, text: Embedding, video: Embedding) -> torch.Tensor:
        t = l2n(text["text"])
        v = self._pool(t, video)
        beta = F.softmax(torch.einsum("vtd,td->vt", v, t) / self.tau, dim=1)
        u = torch.einsum("vt,vtd->vd", beta, v)
        return self._fuse(t, v, u)

    def score(self, text: Embedding, video: Embedding) -> torch.Tensor:
        """Protocol-compliant scores; for a transductive model, the scores of ``text`` taken as one block."""
        if self.transductive:
            return self.score_batch(text, video)
        return chunked_over_text(self._pairs, text, video, self.pair_budget)

    def score_batch(self, text: Embedding, video: Embedding) -> torch.Tensor:
        if not self.transductive:
            return self.score(text, video)
        # videos never interact, so they may be chunked; the caption block must stay whole
        n_v = video["frames"].shape[0]
        step = max(1, self.pair_budget // max(1, text["text"].shape[0]))
        return torch.cat([self._block(text, {k: x[j:j + step] for k, x in video.items()})
                          for j in range(0, n_v, step)], dim=1)

    # ---- training -------------------------------------------------------------------------------------------
    def _gaussian(self, net: PIENet, global_emb: torch.Tensor, local: torch.Tensor, mask: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        o = net(global_emb, local, mask)
        mu = self.mean_head(o)
        sigma = F.softplus(self.var_head(o))
        return mu, sigma, l2n(mu / sigma)

    def loss(self, text: Embedding, video: Embedding) -> dict[str, torch.Tensor]:
        scores = self._block(text, video) if self.transductive else self._pairs(text, video)
        ret = symmetric_infonce(self.logit_scale() * self.logit_multiplier * scores)
        out = {"infonce": ret.detach()}
        total = ret
        if self.kl_weight or self.diversity_weight:
            if "tokens" not in text or "raw_frames" not in video:
                raise ValueError("msam.loss needs embeddings computed in training mode (tokens, raw_frames)")
            t_glob = l2n(text["text"])
            mu_v, sig_v, e_v = self._gaussian(self.pie_net_video, video["video"], video["raw_frames"],
                                              video["frame_mask"])
            mu_t, sig_t, e_t = self._gaussian(self.pie_net_text, t_glob, l2n(text["tokens"]), text["token_mask"])
            b = mu_v.shape[0]
            kl = 0.5 * (2 * torch.log(sig_t / sig_v) - 1 + (sig_v / sig_t).pow(2)
                        + ((mu_t - mu_v) / sig_t).pow(2)).sum() / b
            eye = torch.eye(self.slots, device=e_v.device, dtype=e_v.dtype)
            div_v = (e_v @ e_v.transpose(1, 2) - eye).abs().sum() / (b * self.slots ** 2)
            div_t = (e_t @ e_t.transpose(1, 2) - eye).abs().sum() / (b * self.slots ** 2)
            div = 0.5 * (div_v + div_t)
            total = total + self.kl_weight * kl + self.diversity_weight * div
            out.update(kl=kl.detach(), diversity=div.detach())
        out["loss"] = total
        return out
