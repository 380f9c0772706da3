"""The randmix models keep timm's model contract, so timm's tools (features_only, forward_intermediates,
reset_classifier, layer decay, TorchScript, FX) work on them as on timm's own models.

timm v1.0.9's tests/test_models.py, run against these models, is the reference; these tests check the same
contract on small inputs, plus what timm's suite does not: frozen mixers survive every API. The unshufflers
are image-to-image networks, not classifiers, so of that suite these do not apply to them:

* ``test_model_backward`` and ``test_model_backward_fx`` build the model with ``num_classes=42`` and expect
  42 logits; an unshuffler has no classes and refuses ``num_classes`` (its output is an image).
* ``test_model_default_cfgs`` checks the classifier head: ``num_classes``, ``head_hidden_size``, pooled
  ``forward_head(pre_logits=True)`` features and ``reset_classifier``/``global_pool=''``; an unshuffler has no
  pool and no classifier, and its 1x1 ``head`` is the image decoder.

Every other test of that suite applies to them and passes (forward, features_only, TorchScript, FX); here
they get the feature side of the contract.
"""

import pytest
import timm
import timm.optim
import torch
from timm.data import resolve_model_data_config
from timm.models import group_parameters
from torch import nn

import randmix_bench  # noqa: F401  (registers the models)
from randmix_bench.errors import RandmixError
from randmix_bench.freezing import FROZEN_MIXERS
from randmix_bench.models import list_models, model_task
from randmix_bench.models._common import INPUT_MEAN, INPUT_STD

MODELS = list_models()
CLASSIFIERS = [n for n in MODELS if model_task(n) == "classification"]
UNSHUFFLERS = [n for n in MODELS if model_task(n) == "shuffle"]
SIDE = 16  # input side: every model's feature maps stay at least 1x1, and the big ones stay cheap


def build(name: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model(name, **kwargs).eval()


def image(batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(1))


def frozen_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: m.weight.clone() for n, m in model.named_modules() if isinstance(m, FROZEN_MIXERS)}


def test_the_model_lists_cover_every_registered_model() -> None:
    assert CLASSIFIERS and UNSHUFFLERS and sorted(CLASSIFIERS + UNSHUFFLERS) == sorted(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_default_cfg_describes_the_model(name: str) -> None:
    """[0, 1] inputs: the data pipeline must not normalize (the model does), and the names exist."""
    model = build(name, mixing="chans")
    cfg, state = model.pretrained_cfg, model.state_dict()
    data_cfg = resolve_model_data_config(model)
    assert (cfg["mean"], cfg["std"]) == (data_cfg["mean"], data_cfg["std"]) == (INPUT_MEAN, INPUT_STD)
    assert f"{cfg['first_conv']}.weight" in state
    side = cfg["input_size"][-1]
    if name in CLASSIFIERS:
        assert f"{cfg['classifier']}.weight" in state and cfg["num_classes"] == model.num_classes == 10
        assert cfg["pool_size"] == (side // model.feature_info[-1]["reduction"],) * 2
    else:
        assert cfg["classifier"] is None and cfg["pool_size"] is None


@pytest.mark.parametrize("name", MODELS)
def test_features_only_returns_the_maps_feature_info_describes(name: str) -> None:
    model = build(name, mixing="chans")
    features = build(name, mixing="chans", features_only=True)
    assert len(frozen_buffers(features)) == len(frozen_buffers(model)) > 0  # the wrapper keeps the frozen mixers
    x = image()
    maps = features(x)
    assert features.feature_info.channels() == [f["num_chs"] for f in model.feature_info]
    assert len(maps) == len(model.feature_info) >= 3
    for out, info in zip(maps, model.feature_info, strict=True):
        assert out.shape == (2, info["num_chs"], SIDE // info["reduction"], SIDE // info["reduction"])
    with torch.no_grad():
        assert torch.equal(maps[-1], model.forward_features(x))
    # forward_intermediates' wrapper gives the same maps, and out_indices picks among them
    getter = build(name, mixing="chans", features_only=True, feature_cls="getter", out_indices=(1, -1))
    picked = getter(x)
    assert len(picked) == 2 and torch.equal(picked[0], maps[1]) and torch.equal(picked[1], maps[-1])
    # so do the FX wrapper and the scripted feature extractor
    fx_maps = build(name, mixing="chans", features_only=True, feature_cls="fx")(x)
    assert all(torch.equal(a, b) for a, b in zip(fx_maps, maps, strict=True))
    scripted = torch.jit.script(features)(x)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(scripted, maps, strict=True))


@pytest.mark.parametrize("name", MODELS)
def test_forward_intermediates_ends_where_forward_features_does(name: str) -> None:
    model, x = build(name), image()
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        assert torch.equal(final, model.forward_features(x)) and torch.equal(maps[-1], final)
        assert [m.shape[1] for m in maps] == [f["num_chs"] for f in model.feature_info]
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert len(last_two) == 2 and torch.equal(last_two[0], maps[-2])
        early, first = model.forward_intermediates(x, indices=[1], stop_early=True)
        assert torch.equal(early, maps[1]) and torch.equal(first[0], maps[1])
    with pytest.raises(RandmixError, match="output_fmt must be 'NCHW'"):
        model.forward_intermediates(x, output_fmt="NHWC")


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_prune_intermediate_layers_keeps_what_the_indices_need(name: str) -> None:
    model, x = build(name), image()
    with torch.no_grad():
        wanted = model.forward_intermediates(x, indices=[0, 1], intermediates_only=True)
        assert model.prune_intermediate_layers([0, 1]) == [0, 1]
        stages = getattr(model, model.stages_name)
        assert len(stages) == 1 and model.num_classes == 0
        pruned = model.forward_intermediates(x, indices=[0, 1], intermediates_only=True)
        assert all(torch.equal(a, b) for a, b in zip(wanted, pruned, strict=True))
        assert torch.equal(model(x), wanted[1])  # no stages after index 1, no pool, no classifier


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_reset_classifier_keeps_frozen_mixers_frozen(name: str) -> None:
    model, x = build(name, mixing="chans"), image()
    frozen = frozen_buffers(model)
    params = {n for n, _ in model.named_parameters()}
    assert model.get_classifier() is model.head
    with torch.no_grad():
        features = model.forward_features(x)
        pre_logits = model.forward_head(features, pre_logits=True)
        assert pre_logits.shape == (2, model.head_hidden_size) and features.shape[1] == model.num_features
        model.reset_classifier(0)
        assert torch.equal(model(x), pre_logits)
        model.reset_classifier(5)
        assert model(x).shape == (2, 5) and model.num_classes == 5
        model.reset_classifier(0, "")
        assert torch.equal(model(x), features)
        model.reset_classifier(5, "avg")
        assert model(x).shape == (2, 5)
    assert {n for n, _ in model.named_parameters()} == params  # no frozen weight became a parameter
    after = frozen_buffers(model)
    assert after.keys() == frozen.keys() and all(torch.equal(after[n], frozen[n]) for n in frozen)
    assert all(p.requires_grad for p in model.head.parameters())
    with torch.no_grad():
        unpooled = build(name, mixing="chans", num_classes=0, global_pool="")(x)
    assert unpooled.shape == features.shape


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("coarse", [False, True])
def test_group_matcher_places_every_parameter(name: str, coarse: bool) -> None:
    """Stem first, one group per block (per stage if coarse), the rest (the head) last: timm's layer decay."""
    model = build(name, mixing="chans")
    groups = group_parameters(model, model.group_matcher(coarse))
    names = [n for members in groups.values() for n in members]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    assert all(n.startswith("stem.") for n in groups[0]) and len(groups[0]) == len(list(model.stem.parameters()))
    stages = getattr(model, model.stages_name)  # a ResNet's stages hold blocks; a ConvMixer's are blocks
    n_groups = len(stages) if coarse or model.stages_name == "blocks" else sum(len(stage) for stage in stages)
    assert len(groups) == 1 + n_groups + 1 and all(n.startswith("head.") for n in groups[len(groups) - 1])
    optimizer = timm.optim.create_optimizer_v2(model, "adamw", lr=1e-3, layer_decay=0.75)
    grouped = [p for g in optimizer.param_groups for p in g["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == len(list(model.parameters()))


@pytest.mark.filterwarnings("ignore:The TorchScript type system:UserWarning")  # from fx's GraphModule.__init__
@pytest.mark.parametrize("name", MODELS)
def test_torchscript_and_fx_give_the_eager_outputs(name: str) -> None:
    model, x = build(name, mixing="chans"), image()
    with torch.no_grad():
        eager = model(x)
        traced = torch.fx.symbolic_trace(model)
        assert torch.equal(traced(x), eager)
        assert torch.allclose(torch.jit.script(model)(x), eager, rtol=1e-5, atol=1e-6)
        assert torch.allclose(torch.jit.script(traced)(x), eager, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["randmix_convmixer_tiny", "randmix_resnet_tiny", "randmix_unshuffler_tiny"])
def test_gradient_checkpointing_changes_memory_not_results(name: str) -> None:
    model, x = build(name, mixing="chans"), image()
    grads = []
    for enable in (False, True):
        model.set_grad_checkpointing(enable)
        model.zero_grad()
        out = model(x)
        out.square().mean().backward()
        grads.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    (out_a, grads_a), (out_b, grads_b) = grads
    assert torch.equal(out_a, out_b)
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(grads_a, grads_b, strict=True))


@pytest.mark.parametrize("name", UNSHUFFLERS)
def test_unshufflers_have_no_classifier_side(name: str) -> None:
    """Not a classifier: a class count is refused and there is no classifier API to call by mistake."""
    with pytest.raises(RandmixError, match="image-to-image networks without classes"):
        timm.create_model(name, num_classes=42)
    model = build(name)
    assert not any(hasattr(model, a) for a in ("reset_classifier", "forward_head", "num_classes"))
    assert model(image()).shape == (2, 3, SIDE, SIDE)
