"""A classifier's feature extractor as a backbone: same outputs and parameter names as the
classifier, frozen stages (no gradient, no change under an optimizer), frozen batch norm, and the
backbone-vs-heads learning rates."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import models, nn
from lamina.models.detection import yolov1


def _snapshot(m: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}


def test_resnet_backbone_is_the_classifier_up_to_layer4() -> None:
    m = models.resnet18(num_classes=5).eval()
    bb = models.classifier_backbone(m)
    x = lamina.randn(2, 3, 64, 64)
    want = models.create_feature_extractor(m, {"layer4": "out"})(x)["out"]
    np.testing.assert_array_equal(bb(x).detach().numpy(), want.detach().numpy())
    assert bb.out_channels == 512
    assert bb.stages == [["conv1", "bn1", "relu"], ["maxpool", "layer1"], ["layer2"], ["layer3"], ["layer4"]]
    keys = set(m.state_dict())
    assert set(bb.state_dict()) == {k for k in keys if not k.startswith("fc.")}
    assert bb.layer1 is m.layer1  # shared, not copied


def test_features_backbone_drops_the_global_pool() -> None:
    m = models.lenet_small(num_classes=4, in_channels=3, input_size=32, global_pool="max").eval()
    bb = models.classifier_backbone(m)
    x = lamina.randn(2, 3, 32, 32)
    want = m.features[:-1](x)  # everything but the AdaptiveMaxPool2d
    np.testing.assert_array_equal(bb(x).detach().numpy(), want.detach().numpy())
    assert bb.out_channels == 64 and bb(x).shape == (2, 64, 8, 8)
    assert len(bb.stages) == 3 and bb.stages[0][0] == "features.0"
    assert all(k.startswith("features.") for k in bb.state_dict())


def test_cifar_resnet_backbone_keeps_its_functional_relu() -> None:
    m = models.resnet20(num_classes=3).eval()
    bb = models.classifier_backbone(m)
    x = lamina.randn(1, 3, 32, 32)
    stem = m.bn1(m.conv1(x)).relu()
    want = m.layer3(m.layer2(m.layer1(stem)))
    np.testing.assert_allclose(bb(x).detach().numpy(), want.detach().numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("trainable", [0, 2, 5])
def test_trainable_layers_freeze_the_first_stages(trainable: int) -> None:
    lamina.manual_seed(0)
    bb = models.classifier_backbone("resnet18", trainable_layers=trainable)
    # torchvision's resnet_fpn_backbone rule: the last `trainable` of layer4, layer3, layer2, layer1, conv1+bn1
    trained = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable] + (["bn1"] if trainable == 5 else [])
    for name, p in bb.named_parameters():
        assert p.requires_grad == any(name.startswith(t + ".") for t in trained), name
    head = nn.Conv2d(512, 2, 1)
    opt = lamina.optim.SGD([*bb.parameters(), *head.parameters()], lr=0.1, momentum=0.9, weight_decay=1e-2)
    bb.eval()  # fixed statistics, so every frozen tensor can be compared bit for bit
    before = _snapshot(bb)
    for _ in range(2):
        opt.zero_grad()
        head(bb(lamina.randn(2, 3, 32, 32))).square().mean().backward()
        opt.step()
    for name, p in bb.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and not np.array_equal(p.detach().numpy(), before[name]), name
        else:
            assert p.grad is None and np.array_equal(p.detach().numpy(), before[name]), name


def test_trainable_layers_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"trainable_layers must be an integer in 0\.\.3"):
        models.classifier_backbone("resnet20", trainable_layers=4)


def test_frozen_batchnorm_keeps_its_statistics_in_training_mode() -> None:
    m = models.lenet_small(num_classes=4, in_channels=3, input_size=32)
    bn = m.features[1]
    bn.running_mean.array[...] = np.linspace(-1, 1, bn.num_features)
    bb = models.classifier_backbone(m, freeze_bn=True).train()
    frozen = [mod for mod in bb.modules() if isinstance(mod, models.FrozenBatchNorm2d)]
    assert len(frozen) == 3 and not any(isinstance(mod, nn.BatchNorm2d) for mod in bb.modules())
    before = _snapshot(bb)
    x = lamina.randn(4, 3, 32, 32)
    y_train = bb(x).detach().numpy()
    bb(x).sum().backward()
    after = _snapshot(bb)
    assert all(np.array_equal(after[k], before[k]) for k in before)
    np.testing.assert_allclose(frozen[0].running_mean.detach().numpy(), np.linspace(-1, 1, bn.num_features), rtol=1e-6)
    np.testing.assert_array_equal(bb.eval()(x).detach().numpy(), y_train)  # train and eval agree
    # while an unfrozen backbone's statistics move in training mode
    bb2 = models.classifier_backbone(models.lenet_small(in_channels=3, input_size=32)).train()
    start = bb2.features[1].running_mean.detach().numpy().copy()
    bb2(x)
    assert not np.array_equal(bb2.features[1].running_mean.detach().numpy(), start)


def test_yolo_on_a_classifier_backbone_trains_only_the_unfrozen_part() -> None:
    clf = models.lenet_small(num_classes=4, in_channels=3, input_size=32, global_pool="max")
    det = yolov1(num_classes=3, backbone=models.classifier_backbone(clf, trainable_layers=1, freeze_bn=True),
                 grid_size=2, image_size=32)
    assert det.backbone.out_channels == 64
    losses = det([lamina.rand(3, 32, 32)], [{"boxes": lamina.tensor([[2.0, 3.0, 20.0, 30.0]]),
                                             "labels": lamina.tensor([1])}])
    sum(losses.values()).backward()
    last = det.backbone.stages[-1]
    for name, p in det.named_parameters():
        in_last = any(name.startswith(f"backbone.{u}.") for u in last)
        expect = not name.startswith("backbone.") or in_last
        assert (p.grad is not None) == expect, name
    # a classifier handed to the factory is turned into its backbone
    assert yolov1(num_classes=3, backbone=clf, grid_size=2, image_size=32).backbone.out_channels == 64


def test_unusable_classifiers_are_named() -> None:
    with pytest.raises(ValueError, match="no Conv2d"):
        models.classifier_backbone(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))
    with pytest.raises(TypeError, match="by name"):
        models.classifier_backbone(models.resnet20(), num_classes=3)


def test_backbone_and_head_learning_rates() -> None:
    det = yolov1(num_classes=3, backbone=models.classifier_backbone("resnet20", trainable_layers=2),
                 grid_size=2, image_size=32)
    groups = models.backbone_lr_groups(det, lr=0.1, momentum=0.9)
    assert [(g["name"], g["lr"]) for g in groups] == [("backbone", 0.01), ("heads", 0.1)]
    ids = [{id(p) for p in g["params"]} for g in groups]
    assert ids[0] == {id(p) for p in det.backbone.parameters() if p.requires_grad}
    assert ids[1] == {id(p) for p in det.head.parameters()} and groups[1]["momentum"] == 0.9
    per_stage = models.backbone_lr_groups(det, lr=0.1, backbone_lr=0.04, stage_decay=2.0, include_frozen=True)
    assert [(g["name"], g["lr"]) for g in per_stage] == [
        ("backbone.stage0", 0.01), ("backbone.stage1", 0.02), ("backbone.stage2", 0.04), ("heads", 0.1)]
    assert sum(len(g["params"]) for g in per_stage) == len(list(det.parameters()))
    opt = lamina.optim.SGD(per_stage, lr=1.0)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.02, 0.04, 0.1]
    with pytest.raises(ValueError, match="no submodule 'body'"):
        models.backbone_lr_groups(det, lr=0.1, backbone="body")


def test_discriminative_lr_groups_can_keep_frozen_parameters() -> None:
    m = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 3), nn.Linear(3, 1))
    models.freeze(m, "0.*")
    assert len(models.discriminative_lr_groups(m, lr=1.0, decay=2.0)) == 2
    groups = models.discriminative_lr_groups(m, lr=1.0, decay=2.0, include_frozen=True)
    assert [g["lr"] for g in groups] == [0.25, 0.5, 1.0] and groups[0]["params"][0] is m[0].weight
