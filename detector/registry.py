"""Architectures a checkpoint may name. A card naming anything else is refused, so a card cannot pick arbitrary code."""

from __future__ import annotations

from collections.abc import Callable

import timm
import torch
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
            pooled += [flat.mean(-1).to(final.dtype), flat.std(-1).to(final.dtype)]
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


def backbone_features(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Pooled features before the classifier (timm's forward_head with pre_logits)."""
    return model.forward_head(model.forward_features(batch), pre_logits=True)
