"""Architectures a checkpoint may name. A card naming anything else is refused, so a card cannot pick arbitrary code."""

from __future__ import annotations

from collections.abc import Callable

import timm
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

_ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {}


def register_architecture(name: str) -> Callable[[Callable[[], nn.Module]], Callable[[], nn.Module]]:
    def decorate(builder: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        _ARCHITECTURES[name] = builder
        return builder

    return decorate


def architecture_names() -> list[str]:
    return sorted(_ARCHITECTURES)


def build_model(architecture: str) -> nn.Module:
    """A fresh model with one output logit (AI-generated vs real), weights uninitialised for loading."""
    try:
        builder = _ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r}; known: {architecture_names()}") from None
    return builder()


class MultiScaleClassifier(nn.Module):
    """A timm CNN whose head sees mean- and std-pooled activations of every stage beside the final features.

    Generation artifacts live in low-level texture statistics that global pooling of the last stage washes out; the
    early stages' channel means and spreads keep them, for almost no extra compute.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.backbone = timm.create_model(name, pretrained=False, num_classes=0)
        stage_channels = sum(info["num_chs"] for info in self.backbone.feature_info)
        self.classifier = nn.Linear(self.backbone.num_features + 2 * stage_channels, 1)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.backbone.forward_intermediates(x)

    def forward_head(self, features: tuple[torch.Tensor, list[torch.Tensor]], pre_logits: bool = False) -> torch.Tensor:
        final, stages = features
        pooled = [self.backbone.forward_head(final, pre_logits=True)]
        for stage in stages:
            flat = stage.float().flatten(2)
            # The sample spread of a 1x1 map (a tiny input's last stage) is 0/0; it carries no spread: 0.
            spread = flat.std(-1) if flat.shape[-1] > 1 else torch.zeros_like(flat[..., 0])
            pooled += [flat.mean(-1).to(final.dtype), spread.to(final.dtype)]
        joined = torch.cat(pooled, dim=1)
        return joined if pre_logits else self.classifier(joined)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def gradcam_layer(self) -> nn.Module:
        return self.backbone.bn2

    def load_pretrained(self, state: dict[str, torch.Tensor]) -> None:
        """Load ImageNet weights of the plain timm model (keys without the `backbone.` prefix)."""
        wanted = self.backbone.state_dict()
        self.backbone.load_state_dict({k: v for k, v in state.items() if k in wanted}, strict=True)


class TextureStatsClassifier(MultiScaleClassifier):
    """MultiScaleClassifier plus second-order texture statistics of the early stages: the channel correlations (Gram
    matrix) of stages 1-3 and, per stage, the spatial autocorrelation at small shifts.

    Image generators upsample from a latent grid and denoise; what they leave behind is how neighbouring pixels and
    low-level filters co-vary, which first-order means and spreads only partly keep. Measured leave-one-source-out on
    the shared modern sets (frozen ImageNet weights, 5 native crops): AUROC 0.824 mean against 0.813 without them.
    """

    GRAM_STAGES = 3
    SHIFTS = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (0, 4), (4, 0))

    def __init__(self, name: str) -> None:
        super().__init__(name)
        channels = [info["num_chs"] for info in self.backbone.feature_info]
        gram = sum(c * (c - 1) // 2 for c in channels[: self.GRAM_STAGES])
        extra = gram + len(channels) * len(self.SHIFTS)
        self.classifier = nn.Linear(self.classifier.in_features + extra, 1)
        for index, count in enumerate(channels[: self.GRAM_STAGES]):
            rows, cols = torch.triu_indices(count, count, 1)
            self.register_buffer(f"_gram_rows{index}", rows, persistent=False)
            self.register_buffer(f"_gram_cols{index}", cols, persistent=False)

    def forward_head(self, features: tuple[torch.Tensor, list[torch.Tensor]], pre_logits: bool = False) -> torch.Tensor:
        final, stages = features
        pooled = [self.backbone.forward_head(final, pre_logits=True).float()]
        for index, stage in enumerate(stages):
            flat = stage.float().flatten(2)
            mean = flat.mean(-1)
            centred = flat - mean.unsqueeze(-1)
            if index < self.GRAM_STAGES:
                covariance = torch.bmm(centred, centred.transpose(1, 2)) / flat.shape[-1]
                variance = torch.diagonal(covariance, dim1=1, dim2=2)
            else:
                variance = centred.pow(2).mean(-1)
            spread = variance.clamp_min(1e-8).sqrt()
            pooled += [mean, spread]
            if index < self.GRAM_STAGES:
                rows, cols = getattr(self, f"_gram_rows{index}"), getattr(self, f"_gram_cols{index}")
                pooled.append(covariance[:, rows, cols] / (spread[:, rows] * spread[:, cols]))
            pooled += self._autocorrelations(centred.view_as(stage), spread)
        joined = torch.cat(pooled, dim=1).to(final.dtype)
        return joined if pre_logits else self.classifier(joined)

    def _autocorrelations(self, centred: torch.Tensor, spread: torch.Tensor) -> list[torch.Tensor]:
        """Per shift s, the mean over channels of sum_p x(p) x(p + s) / (overlap * spread^2) on the centred maps, where
        the map and its shifted copy overlap.

        Each shift's sum is one diagonal of a Gram matrix of the maps' rows or columns, not a product of two shifted
        copies: in ONNX Runtime every slice is a copy, and those copies took a third of the CNN's time on a CPU.
        """
        channels, height, width = centred.shape[1:]
        planes = centred.reshape(-1, height, width)
        weight = 1.0 / (spread.pow(2) * channels)
        grams: dict[tuple[int, int], torch.Tensor] = {}
        correlations = []
        for dy, dx in self.SHIFTS:
            if dy >= height or dx >= width:  # no overlap (maps of tiny inputs): no evidence either way
                correlations.append(spread.new_zeros(spread.shape[0], 1))
                continue
            if dx == 0:  # down: rows h and h + dy
                key, offset = (0, 0), dy
                if key not in grams:
                    grams[key] = torch.bmm(planes, planes.transpose(1, 2))
            elif dy == 0:  # right: columns w and w + dx
                key, offset = (1, 0), dx
                if key not in grams:
                    grams[key] = torch.bmm(planes.transpose(1, 2), planes)
            else:  # diagonal: rows h and h + dy, the second moved left by dx (zeros past the edge)
                key, offset = (2, dx), dy
                if key not in grams:
                    moved = nn.functional.pad(planes[:, :, dx:], (0, dx))
                    grams[key] = torch.bmm(planes, moved.transpose(1, 2))
            total = _superdiagonal_sums(grams[key], offset).view_as(spread) / ((height - dy) * (width - dx))
            correlations.append((total * weight).sum(1, keepdim=True))
        return correlations


def _superdiagonal_sums(matrices: torch.Tensor, offset: int) -> torch.Tensor:
    """The sum of each square matrix's `offset`-th superdiagonal, read with one strided slice of the flattened matrix
    (`torch.diagonal` exports to ONNX as a product with a mask over the whole matrix)."""
    side = matrices.shape[-1]
    return matrices.reshape(-1, side * side)[:, offset : (side - offset) * side : side + 1].sum(-1)


class MultiLayerViT(VisionTransformer):
    """A timm ViT whose head reads the class token and the mean patch token of several blocks, not only the last.

    Early and middle blocks still carry low-level appearance that the last block abstracts into semantics; the frozen
    DINOv2 probe measured on the shared modern sets gained from them. Weights load under the plain model's names, so
    the same backbone file serves both."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        depth = len(self.blocks)
        # Blocks 4, 8 and 12 of 12: the ends of each third.
        self.layers = tuple(round(depth * part / 3) - 1 for part in (1, 2, 3))
        self.head = nn.Linear(2 * len(self.layers) * self.embed_dim, self.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = self.norm_pre(self._pos_embed(self.patch_embed(x)))
        pooled = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self.layers:
                pooled += [x[:, 0], x[:, self.num_prefix_tokens :].mean(1)]
        return torch.cat(pooled, dim=1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:  # type: ignore[override]
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.forward_head(self.forward_features(x))


def _timm_binary(name: str, **kwargs: object) -> Callable[[], nn.Module]:
    def builder() -> nn.Module:
        return timm.create_model(name, pretrained=False, num_classes=1, **kwargs)

    return builder


# The production CNN screen: ImageNet EfficientNet-Lite0 (ReLU6, no SE: fast on CPUs and in FP16).
register_architecture("tf_efficientnet_lite0")(_timm_binary("tf_efficientnet_lite0"))
# The escalation ViT: DINOv2 ViT-S/14 at 224 px (257 tokens), looked at only for borderline CNN scores.
register_architecture("vit_small_patch14_dinov2")(_timm_binary("vit_small_patch14_dinov2", img_size=224))
# Tiny stand-ins with the same structure as the production networks, so tests run the whole pipeline in milliseconds.
register_architecture("test_efficientnet")(_timm_binary("test_efficientnet"))
register_architecture("tf_efficientnet_lite0_multiscale")(lambda: MultiScaleClassifier("tf_efficientnet_lite0"))
register_architecture("test_efficientnet_multiscale")(lambda: MultiScaleClassifier("test_efficientnet"))
register_architecture("test_vit")(_timm_binary("test_vit"))
# Detector v2: texture statistics of native-resolution crops, and the ViT's multi-layer tokens.
register_architecture("tf_efficientnet_lite0_texture")(lambda: TextureStatsClassifier("tf_efficientnet_lite0"))
register_architecture("test_efficientnet_texture")(lambda: TextureStatsClassifier("test_efficientnet"))
register_architecture("vit_small_patch14_dinov2_multilayer")(
    lambda: MultiLayerViT(
        img_size=224, patch_size=14, embed_dim=384, depth=12, num_heads=6, init_values=1e-5, num_classes=1
    )
)
register_architecture("test_vit_multilayer")(
    lambda: MultiLayerViT(img_size=64, patch_size=16, embed_dim=32, depth=3, num_heads=2, num_classes=1)
)


def backbone_features(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Pooled features before the classifier (timm's forward_head with pre_logits)."""
    return model.forward_head(model.forward_features(batch), pre_logits=True)
