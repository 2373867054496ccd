"""Every registered method behind the one interface: shapes, masking, protocol-compliant scoring, learning, recipes,
costs. The tests are parametrised over the method registry, so a new method is covered by adding it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dvtr_bench.errors import ConfigError
from dvtr_bench.models import count_parameters, create_method, gflops_per_clip, list_methods, load_recipe
from dvtr_bench.models.registry import list_recipes
from dvtr_bench.models.base import FrameSpec, concat_embeddings, pad_clip, select_text, slice_embedding
from dvtr_bench.protocol import v1
from dvtr_bench.text import CaptionCorpus

METHODS = list_methods()
BUILTIN = ["meanP", "seqLSTM", "seqTransf", "tightTransf", "xpool", "msam", "amfmn", "dmae", "mcsan"]
CAPTIONS = ["a red truck drives along a dusty road", "two white boats moored in a harbour",
            "a football pitch next to a school", "cars queue at a roundabout", "a river bends past green fields",
            "rows of solar panels on a roof", "a train crosses a bridge"]
REPO = Path(__file__).resolve().parents[1]


SIZE = 64  # the tiny config at 64 px (4 patches a frame) keeps CPU tests fast; 224 px is the same code path


def _tiny(name: str, **kw):
    torch.manual_seed(0)
    return create_method(name, backbone="dvtr-tiny", pretrained=None, image_size=SIZE, **kw)


@pytest.fixture(scope="module")
def methods() -> dict:
    return {name: _tiny(name).eval() for name in METHODS}


def _clips(n: int, t: int = v1.NUM_FRAMES, seed: int = 0, size: int = SIZE) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, t, 3, size, size, generator=g)


def test_registry_lists_every_method():
    assert set(BUILTIN) <= set(METHODS)
    # every registered class has its recipe, and every recipe names a registered class
    recipes = list_recipes()
    assert {load_recipe(name)["method"] for name in recipes} == set(METHODS)
    assert set(METHODS) <= set(recipes)
    docs = (REPO / "docs" / "methods.md").read_text()
    assert all(f"`{name}`" in docs for name in METHODS), "every method has its section in docs/methods.md"
    with pytest.raises(ConfigError, match="unknown method"):
        create_method("no-such-method", backbone="dvtr-tiny", pretrained=None)
    m = create_method("meanP", backbone="dvtr-tiny", pretrained=None)
    assert m.image_size == 224 and m.config["backbone"] == "dvtr-tiny" and m.config["pretrained"] is None
    with pytest.raises(ConfigError, match="bad options"):
        create_method("xpool", backbone="dvtr-tiny", pretrained=None, not_an_option=1)


@pytest.mark.parametrize("name", METHODS)
def test_shapes_and_param_groups(methods, name):
    m = methods[name]
    tokens = m.tokenize(CAPTIONS[:3])
    ids = tokens["tokens"] if isinstance(tokens, dict) else tokens  # dict inputs carry the tokens under "tokens"
    assert ids.shape == (3, v1.MAX_TOKENS) and ids.dtype == torch.long
    if isinstance(tokens, dict):
        assert all(v.shape[0] == 3 for v in tokens.values())
    frames, mask = _clips(5), torch.ones(5, v1.NUM_FRAMES, dtype=torch.bool)
    mask[2, 7:] = False
    with torch.no_grad():
        text, video = m.encode_text(tokens), m.encode_video(frames, mask)
        scores = m.score(text, video)
    assert all(v.shape[0] == 3 for v in text.values())
    assert all(v.shape[0] == 5 for v in video.values())
    assert scores.shape == (3, 5) and torch.isfinite(scores).all()
    # blocks can be concatenated / sliced without knowing the keys
    both = concat_embeddings([slice_embedding(video, 0, 2), slice_embedding(video, 2, 5)])
    assert torch.allclose(m.score(text, both), scores)
    groups = m.param_groups()
    seen = [id(p) for g in groups for p in g["params"]]
    assert len(seen) == len(set(seen)) == sum(1 for p in m.parameters() if p.requires_grad)
    assert {g["group"] for g in groups} >= {"backbone"}
    if name != "meanP":
        assert "new" in {g["group"] for g in groups}
    assert all(not g["decay"] or all(p.ndim >= 2 for p in g["params"]) for g in groups)


@pytest.mark.parametrize("name", METHODS)
def test_padding_cannot_change_a_score(methods, name):
    m = methods[name]
    text = m.encode_text(m.tokenize(CAPTIONS[:4]))
    frames = _clips(3)
    mask = torch.ones(3, v1.NUM_FRAMES, dtype=torch.bool)
    mask[0, 5:] = False
    mask[2, 9:] = False
    junk = frames.clone()
    junk[0, 5:] = torch.randn_like(junk[0, 5:]) * 1e3
    junk[2, 9:] = float("nan")
    with torch.no_grad():
        clean = m.score(text, m.encode_video(frames * mask[..., None, None, None], mask))
        dirty = m.score(text, m.encode_video(junk, mask))
        # the same first clip given with 5 frames and no padding at all
        short = m.score(text, m.encode_video(frames[:1, :5], torch.ones(1, 5, dtype=torch.bool)))
    assert torch.isfinite(dirty).all()
    torch.testing.assert_close(dirty, clean, rtol=0, atol=1e-5)
    torch.testing.assert_close(short[:, 0], clean[:, 0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", METHODS)
def test_default_scoring_depends_only_on_the_pair(methods, name):
    m = methods[name]
    assert m.transductive is False
    text = m.encode_text(m.tokenize(CAPTIONS))
    with torch.no_grad():
        video = m.encode_video(_clips(4, seed=1), torch.ones(4, v1.NUM_FRAMES, dtype=torch.bool))
        full = m.score(text, video)
        alone = torch.stack([torch.stack([m.score(slice_embedding(text, i, i + 1), slice_embedding(video, j, j + 1))[0, 0]
                                          for j in range(4)]) for i in range(len(CAPTIONS))])
        blocked = m.score_all(text, video, block=3)
    torch.testing.assert_close(full, alone, rtol=0, atol=1e-5)
    torch.testing.assert_close(blocked, full, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", METHODS)
def test_training_encoders_draw_nothing_random(name):
    """In training mode each process encodes its own shard of the global batch, so a random draw there (dropout in
    an encoder) would depend on the number of processes; the trainer seeds the loss's draws alike on every rank, so
    randomness belongs in ``loss``, where the whole global batch is. Encoding a batch whole or in halves, under
    different seeds, must give the same embeddings."""
    m = _tiny(name).train()
    frames, mask = _clips(4, seed=3), torch.ones(4, v1.NUM_FRAMES, dtype=torch.bool)
    tokens = m.tokenize(CAPTIONS[:4])
    with torch.no_grad():
        torch.manual_seed(1)
        whole_t, whole_v = m.encode_text(tokens), m.encode_video(frames, mask)
        torch.manual_seed(2)
        halves_t = concat_embeddings([m.encode_text(select_text(tokens, slice(0, 2))),
                                      m.encode_text(select_text(tokens, slice(2, 4)))])
        halves_v = concat_embeddings([m.encode_video(frames[:2], mask[:2]), m.encode_video(frames[2:], mask[2:])])
    for whole, halves in ((whole_t, halves_t), (whole_v, halves_v)):
        assert whole.keys() == halves.keys()
        for k in whole:
            torch.testing.assert_close(halves[k], whole[k], rtol=0, atol=1e-5, msg=k)


@pytest.mark.parametrize("name", METHODS)
def test_index_vectors_and_the_dot_product_claim(methods, name):
    """Every method gives one vector per caption and per clip for `dvtr index`; a method that claims its score is
    their dot product is held to it, because an index then ranks without re-scoring."""
    m = methods[name]
    frames, mask = _clips(5, seed=2), torch.ones(5, v1.NUM_FRAMES, dtype=torch.bool)
    mask[3, 4:] = False
    with torch.no_grad():
        text, video = m.encode_text(m.tokenize(CAPTIONS)), m.encode_video(frames, mask)
        tv, vv = m.text_vector(text), m.video_vector(video)
        scores = m.score(text, video)
    assert tv.ndim == 2 and tv.shape[0] == len(CAPTIONS) and vv.shape == (5, tv.shape[1])
    assert tv.dtype == vv.dtype == torch.float32 and torch.isfinite(tv).all() and torch.isfinite(vv).all()
    torch.testing.assert_close(tv.norm(dim=1), torch.ones(len(CAPTIONS)), rtol=0, atol=1e-5)
    if m.dot_product:
        torch.testing.assert_close(tv @ vv.T, scores, rtol=0, atol=1e-5)


def test_msam_transductive_option_depends_on_the_caption_block():
    m = _tiny("msam", transductive_scoring=True, eval_text_block=4).eval()
    assert m.transductive is True and m.eval_text_block == 4
    assert m.config["transductive_scoring"] is True
    text = m.encode_text(m.tokenize(CAPTIONS))
    with torch.no_grad():
        video = m.encode_video(_clips(3, seed=2), torch.ones(3, v1.NUM_FRAMES, dtype=torch.bool))
        with_others = m.score_batch(slice_embedding(text, 0, 4), video)
        fewer = m.score_batch(slice_embedding(text, 0, 2), video)
        full = m.score_all(text, video, block=2)
    # the same pairs score differently when other captions share the block: transductive, and marked so
    assert not torch.allclose(with_others[:2], fewer, atol=1e-6)
    # score_all uses the method's own caption blocks of eval_text_block, whatever block size the caller asks for
    torch.testing.assert_close(full[:4], with_others, rtol=0, atol=1e-5)
    torch.testing.assert_close(full[4:], m.score_batch(slice_embedding(text, 4, 7), video), rtol=0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS)
def test_loss_falls_on_a_tiny_set(name):
    # tightTransf's embedding dropout makes a 5-pair loss too noisy to compare a few steps; everything else as released
    m = _tiny(name, **({"dropout": 0.0} if name == "tightTransf" else {})).train()
    # the 6.3 M-row token table is most of the tiny model; freezing it keeps the test fast without helping it
    m.backbone.model.token_embedding.weight.requires_grad_(False)
    torch.manual_seed(0)
    n = 5
    # the caption-corpus hook as the trainer runs it: prepare_text, then the corpus rows (caption k of clip k)
    corpus = CaptionCorpus(tuple(CAPTIONS[:n]), np.arange(n), tuple(f"clip{i}" for i in range(n)))
    m.prepare_text(corpus)
    tokens = m.tokenize_corpus(corpus)
    frames = _clips(n, t=2, seed=3)
    mask = torch.ones(n, 2, dtype=torch.bool)
    mask[1, 1:] = False
    # DMAE's logits use a fixed scale of 100 (not CLIP's learned 1/0.07), so a 1e-3 step overshoots there
    lr = 3e-4 if name == "dmae" else 1e-3
    opt = torch.optim.AdamW([p for g in m.param_groups() for p in g["params"]], lr=lr, weight_decay=0.0)
    losses = []
    # the cross-encoder's score head starts near zero (N(0, 0.02)), so it needs a few more steps to get going
    for _ in range(24 if name == "tightTransf" else 12):
        out = m.loss(m.encode_text(tokens), m.encode_video(frames, mask))
        assert torch.isfinite(out["loss"])
        opt.zero_grad()
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        # the retrieval term, without regularisers: InfoNCE, the method's replacement for it (DMAE's NegNCE), or
        # the whole loss of a method without such a term (AMFMN's hinges)
        losses.append(float(out["negnce"] if "negnce" in out else out["infonce"] if "infonce" in out
                            else out["loss"].detach()))
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses
    m.eval()
    with torch.no_grad():
        s = m.score(m.encode_text(tokens), m.encode_video(frames, mask))
    assert (s.argmax(1) == torch.arange(n)).float().mean() >= 0.8


def test_msam_loss_has_released_terms_and_weights():
    m = _tiny("msam").train()
    tokens = m.tokenize(CAPTIONS[:4])
    text = m.encode_text(tokens)
    assert text["tokens"].shape == (4, v1.MAX_TOKENS, m.embed_dim)
    video = m.encode_video(_clips(4, t=3), torch.ones(4, 3, dtype=torch.bool))
    out = m.loss(text, video)
    assert set(out) == {"loss", "infonce", "kl", "diversity"}
    torch.testing.assert_close(out["loss"].detach(), out["infonce"] + 1.0 * out["kl"] + 0.01 * out["diversity"])
    assert m.config["slots"] == 7 and m.pie_net_video.attention.w_2.out_features == 7
    m.eval()
    assert "tokens" not in m.encode_text(tokens)  # evaluation embeddings stay small


def test_tokenizer_truncates_to_protocol_length(methods):
    m = methods["meanP"]
    tok = m.tokenize(["word " * 100, "short"])
    assert tok.shape == (2, 32)
    assert tok[0, -1].item() == 49407  # the end token survives truncation
    assert tok[1, 2].item() == 49407 and (tok[1, 3:] == 0).all()


def test_frame_spec_crops_resizes_and_normalises():
    spec = FrameSpec(image_size=224, mean=(0.5, 0.25, 0.75), std=(0.5, 0.25, 0.25))
    colour = np.array([0.5, 0.25, 0.75]) * 255
    frames = np.broadcast_to(np.round(colour).astype(np.uint8), (2, 12, 224, 398, 3))
    out = spec(frames)
    assert out.shape == (2, 12, 3, 224, 224) and out.dtype == torch.float32
    assert out.abs().max() < 0.02  # the mean colour maps to ~0
    small = FrameSpec(image_size=160, mean=(0.5,) * 3, std=(0.5,) * 3)(np.zeros((12, 224, 300, 3), np.uint8))
    assert small.shape == (12, 3, 160, 160) and torch.allclose(small, torch.full_like(small, -1.0))
    padded, mask = pad_clip(torch.ones(5, 3, 8, 8), 12)
    assert padded.shape == (12, 3, 8, 8) and mask.tolist() == [True] * 5 + [False] * 7


def _tiny_state(context: int = 32) -> dict:
    import open_clip

    torch.manual_seed(1)
    return open_clip.create_model("dvtr-tiny", force_context_length=context).state_dict()


@pytest.mark.parametrize("form", ["plain", "module", "safetensors", "context77", "dvtr"])
def test_local_checkpoint_loading(tmp_path, form):
    from dvtr_bench.models.backbone import create_backbone

    sd = _tiny_state(77 if form == "context77" else 32)
    path = tmp_path / "ckpt.pt"
    if form == "module":
        torch.save({"module." + k: v for k, v in sd.items()}, path)
    elif form == "safetensors":
        from safetensors.torch import save_file

        path = tmp_path / "ckpt.safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    elif form == "dvtr":  # a dvtr training checkpoint: the whole method's state under "model"
        torch.save({"model": {"backbone.model." + k: v for k, v in sd.items()} | {"header.w": torch.ones(2)},
                    "epoch": 3}, path)
    else:
        torch.save({"state_dict": sd} if form == "plain" else sd, path)
    bb = create_backbone("dvtr-tiny", str(path))
    got = bb.model.state_dict()
    assert bb.pretrained == str(path)
    torch.testing.assert_close(got["visual.proj"], sd["visual.proj"])
    torch.testing.assert_close(got["token_embedding.weight"], sd["token_embedding.weight"])
    # a 77-position checkpoint keeps its first 32 positions (CLIP4Clip's slicing), never an interpolation
    torch.testing.assert_close(got["positional_embedding"], sd["positional_embedding"][:32])


def test_checkpoint_of_another_architecture_is_a_clear_error(tmp_path):
    from dvtr_bench.models.backbone import create_backbone

    sd = _tiny_state()
    sd.pop("visual.proj")
    torch.save(sd, tmp_path / "broken.pt")
    with pytest.raises(ConfigError, match="does not fit"):
        create_backbone("dvtr-tiny", str(tmp_path / "broken.pt"))


def test_weights_released_for_quickgelu_are_refused_on_a_gelu_model(tmp_path, monkeypatch):
    import hashlib

    from dvtr_bench.models import backbone as B

    path = tmp_path / "release.pt"
    torch.save(_tiny_state(), path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    # as if open_clip knew this file as a QuickGELU release (OpenAI's files carry their sha256 in their address)
    monkeypatch.setattr(B, "known_releases", lambda: {sha: ("dvtr-tiny-quickgelu", "openai", True)})
    with pytest.raises(ConfigError, match="trained with QuickGELU, but dvtr-tiny uses GELU.*--backbone "
                                          "dvtr-tiny-quickgelu"):
        B.create_backbone("dvtr-tiny", str(path))
    bb = B.create_backbone("dvtr-tiny-quickgelu", str(path))
    assert bb.quick_gelu and bb.weights_sha256 == sha
    assert not B.create_backbone("dvtr-tiny", None).quick_gelu


def test_open_clip_knows_the_openai_release_hashes():
    from dvtr_bench.models.backbone import known_releases

    releases = known_releases()
    vit = [v for v in releases.values() if v[0] == "ViT-B-32-quickgelu"]
    assert vit == [("ViT-B-32-quickgelu", "openai", True)]


def test_a_torchscript_archive_is_taken_for_an_openai_release(tmp_path):
    from dvtr_bench.models.backbone import create_backbone

    path = tmp_path / "ViT-B-32.pt"
    torch.jit.save(torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2)), str(path))
    with pytest.raises(ConfigError, match="TorchScript archive.*--backbone dvtr-tiny-quickgelu"):
        create_backbone("dvtr-tiny", str(path))


def test_a_checkpoint_with_other_shapes_names_both_architectures(tmp_path):
    import open_clip

    from dvtr_bench.models.backbone import create_backbone

    torch.manual_seed(0)
    wide = open_clip.create_model("dvtr-tiny", force_context_length=32, force_image_size=64).state_dict()
    torch.save(wide, tmp_path / "64px.pt")
    with pytest.raises(ConfigError, match=r"another image size \(.*image size 64.*image size 224"):
        create_backbone("dvtr-tiny", str(tmp_path / "64px.pt"))
    assert create_backbone("dvtr-tiny", str(tmp_path / "64px.pt"), image_size=64).frame_spec.image_size == 64
    # asked for explicitly, another size interpolates the position grid (open_clip's behaviour)
    assert create_backbone("dvtr-tiny", str(tmp_path / "64px.pt"), image_size=96).frame_spec.image_size == 96
    narrow = {k: v for k, v in _tiny_state().items()}
    narrow["text_projection"] = torch.zeros(128, 64)
    torch.save(narrow, tmp_path / "narrow.pt")
    with pytest.raises(ConfigError, match=r"other shapes \(e\.g\. text_projection: \(128, 64\).*embedding 64"):
        create_backbone("dvtr-tiny", str(tmp_path / "narrow.pt"))


def test_missing_checkpoint_and_offline_tag_are_clear_errors(tmp_path, monkeypatch):
    from dvtr_bench.models.backbone import create_backbone

    with pytest.raises(ConfigError, match="checkpoint file not found"):
        create_backbone("dvtr-tiny", str(tmp_path / "nope.pt"))
    with pytest.raises(ConfigError, match="neither a pretrained tag"):
        create_backbone("dvtr-tiny", "openai")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="--pretrained") as err:
        create_backbone("ViT-B-32", "openai", cache_dir=str(tmp_path / "empty-cache"))
    assert "HF_HUB_OFFLINE" in str(err.value)
    with pytest.raises(ConfigError, match="unknown backbone"):
        create_backbone("ViT-Q-99", None)


def test_recipes_cite_sources_and_build(methods):
    for name in METHODS:
        recipe = json.loads((REPO / "baselines" / f"{name}.json").read_text())
        assert recipe["method"] == name
        assert recipe["model"]["backbone"] == "ViT-B-32" and recipe["model"]["pretrained"] == "openai"
        assert recipe["protocol"]["num_frames"] == v1.NUM_FRAMES and recipe["protocol"]["max_tokens"] == v1.MAX_TOKENS
        assert recipe["protocol"]["seeds"] == list(v1.SEEDS)
        assert recipe["source"]["train"] and recipe["source"]["options"]
        # the train section is the method's release regime, every choice spelled out and sourced
        for key in ("epochs", "batch_size", "lr", "warmup", "weight_decay", "grad_clip", "optimizer", "schedule",
                    "decay", "loss_group", "augment", "select_metric", "select_ties", "betas", "eps"):
            assert key in recipe["train"], (name, key)
        assert recipe["source"]["frames"] and recipe["source"]["regime"]
        # every option in the recipe is accepted by the method, and reaches its config
        m = _tiny(recipe["method"], **recipe["model"]["options"])
        assert m.config["options"] == recipe["model"]["options"]
    demo = load_recipe("msam", overlay="demo")
    assert demo["model"]["backbone"] == "dvtr-tiny" and demo["model"]["pretrained"] is None
    assert demo["overlay"] == "demo" and demo["model"]["options"]["slots"] == 7


def test_cost_counts(methods):
    p = count_parameters(methods["seqTransf"])
    assert p["total"] == p["backbone"] + p["new"] and p["new"] > 0
    assert count_parameters(methods["meanP"])["new"] == 0
    g_mean, g_tight = gflops_per_clip(methods["meanP"]), gflops_per_clip(methods["tightTransf"])
    assert 0 < g_mean < g_tight  # the cross-encoder pays per pair on top of the frame encoder


# built-in methods whose video side is a head over per-frame CLS features: all of them can run from cached features
FRAME_FEATURE_METHODS = ["meanP", "seqLSTM", "seqTransf", "tightTransf", "xpool", "msam"]


@pytest.mark.parametrize("name", METHODS)
def test_video_head_runs_from_frame_features(methods, name):
    # The cached-feature mode feeds encode_video_features with stored frame_features output: that must be exactly
    # what encode_video computes, padded frames included.
    from dvtr_bench.models.common import uses_frame_features

    m = methods[name]
    if not uses_frame_features(m):
        # only a method whose video embedding reads more than the per-frame features may do without the hook
        assert name not in FRAME_FEATURE_METHODS, f"{name} overrides encode_video: no cached frame features"
        pytest.skip(f"{name} reads more than per-frame features (e.g. amfmn: intermediate patch maps)")
    frames, mask = _clips(3, seed=5), torch.ones(3, v1.NUM_FRAMES, dtype=torch.bool)
    mask[1, 4:] = False
    mask[2, ::2] = False
    with torch.no_grad():
        direct = m.encode_video(frames, mask)
        feats, fmask = m.frame_features(frames, mask)
        head = m.encode_video_features(feats.clone(), fmask.clone())
    assert direct.keys() == head.keys()
    for k in direct:
        assert torch.equal(direct[k], head[k]), k
