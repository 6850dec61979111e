"""The feature pyramid network (Lin et al. 2017), as ``torchvision.ops.feature_pyramid_network``:
a 1×1 lateral conv per backbone map (``inner_blocks``), a top-down path adding each coarser
result upsampled (nearest) onto the next finer lateral, and a 3×3 conv per level
(``layer_blocks``), all to ``out_channels``; ``LastLevelMaxPool`` adds a stride-2 level ``'pool'``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ... import nn
from ...autograd.tensor import Tensor
from ...nn import functional as F

__all__ = ["FeaturePyramidNetwork", "ExtraFPNBlock", "LastLevelMaxPool"]


class ExtraFPNBlock(nn.Module):
    """Extra levels on top of the FPN's results: ``forward(results, x, names)`` returns the
    lengthened ``(results, names)`` (``x``: the backbone's maps)."""

    def forward(self, results: list[Tensor], x: list[Tensor], names: list[str]) -> tuple[list[Tensor], list[str]]:
        raise NotImplementedError


class LastLevelMaxPool(ExtraFPNBlock):
    """One more level ``'pool'``: the coarsest result subsampled by 2 (a 1×1 max pool of stride 2)."""

    def forward(self, x: list[Tensor], y: list[Tensor], names: list[str]) -> tuple[list[Tensor], list[str]]:
        names.append("pool")
        x.append(F.max_pool2d(x[-1], kernel_size=1, stride=2, padding=0))
        return x, names


def _conv_block(c_in: int, c_out: int, k: int, norm_layer: Callable[..., nn.Module] | None) -> nn.Sequential:
    # torchvision's Conv2dNormActivation(activation_layer=None): conv (bias only without norm), norm
    parts = [nn.Conv2d(c_in, c_out, k, padding=(k - 1) // 2, bias=norm_layer is None)]
    if norm_layer is not None:
        parts.append(norm_layer(c_out))
    return nn.Sequential(*parts)


class FeaturePyramidNetwork(nn.Module):
    """FPN on an ordered dict of maps, finest first (``torchvision.ops.FeaturePyramidNetwork``).

    Args:
        in_channels_list: the channels of each input map.
        out_channels: the channels of every output map.
        extra_blocks: e.g. :class:`LastLevelMaxPool`.
        norm_layer: a norm after each conv (none by default).

    Convs are initialized ``kaiming_uniform_(a=1)``, biases 0, as torchvision. Returns an
    ``OrderedDict`` with the input's names (and the extra blocks').

    Example:
        >>> import lamina
        >>> from collections import OrderedDict
        >>> fpn = FeaturePyramidNetwork([4, 8], 6, extra_blocks=LastLevelMaxPool())
        >>> out = fpn(OrderedDict(a=lamina.rand(1, 4, 8, 8), b=lamina.rand(1, 8, 4, 4)))
        >>> [(k, tuple(v.shape)) for k, v in out.items()]
        [('a', (1, 6, 8, 8)), ('b', (1, 6, 4, 4)), ('pool', (1, 6, 2, 2))]
    """

    def __init__(self, in_channels_list: Sequence[int], out_channels: int, extra_blocks: ExtraFPNBlock | None = None,
                 norm_layer: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        self.inner_blocks = nn.ModuleList()
        self.layer_blocks = nn.ModuleList()
        for c in in_channels_list:
            if c == 0:
                raise ValueError("FeaturePyramidNetwork: in_channels=0 is currently not supported")
            self.inner_blocks.append(_conv_block(c, out_channels, 1, norm_layer))
            self.layer_blocks.append(_conv_block(out_channels, out_channels, 3, norm_layer))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0.0)
        if extra_blocks is not None and not isinstance(extra_blocks, ExtraFPNBlock):
            raise TypeError(f"FeaturePyramidNetwork: extra_blocks should be of type ExtraFPNBlock not "
                            f"{type(extra_blocks).__name__}")
        self.extra_blocks = extra_blocks

    def forward(self, x: Mapping[str, Tensor]) -> OrderedDict[str, Any]:
        names = list(x.keys())
        maps = list(x.values())
        if len(maps) != len(self.inner_blocks):
            raise ValueError(f"FeaturePyramidNetwork: built for {len(self.inner_blocks)} maps, given {len(maps)}")
        last_inner = self.inner_blocks[-1](maps[-1])
        results = [self.layer_blocks[-1](last_inner)]
        for idx in range(len(maps) - 2, -1, -1):
            inner_lateral = self.inner_blocks[idx](maps[idx])
            top_down = F.interpolate(last_inner, size=tuple(inner_lateral.shape[-2:]), mode="nearest")
            last_inner = inner_lateral + top_down
            results.insert(0, self.layer_blocks[idx](last_inner))
        if self.extra_blocks is not None:
            results, names = self.extra_blocks(results, maps, names)
        return OrderedDict(zip(names, results))
