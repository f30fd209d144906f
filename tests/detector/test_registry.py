import pytest
import torch

from detector.registry import TextureStatsClassifier, build_model


def texture_statistics_by_definition(model: TextureStatsClassifier, image: torch.Tensor) -> torch.Tensor:
    """The texture CNN's head input as its docstring defines it: each stage map standardised per channel, its channel
    correlations, and the products of the map with shifted copies of itself averaged over the overlap and channels."""
    final, stages = model.forward_features(image)
    pooled = [model.backbone.forward_head(final, pre_logits=True)]
    for index, stage in enumerate(stages):
        flat = stage.flatten(2)
        centred = flat - flat.mean(-1, keepdim=True)
        spread = centred.pow(2).mean(-1).sqrt()
        pooled += [flat.mean(-1), spread]
        normalised = centred / spread.unsqueeze(-1)
        if index < model.GRAM_STAGES:
            correlation = normalised @ normalised.transpose(1, 2) / flat.shape[-1]
            rows, cols = torch.triu_indices(stage.shape[1], stage.shape[1], 1)
            pooled.append(correlation[:, rows, cols])
        grid = normalised.view_as(stage)
        height, width = grid.shape[-2:]
        for dy, dx in model.SHIFTS:
            products = grid[:, :, dy:, dx:] * grid[:, :, : height - dy, : width - dx]
            pooled.append(products.mean((2, 3)).mean(1, keepdim=True))
    return torch.cat(pooled, dim=1)


@pytest.mark.parametrize("height, width", [(160, 224), (224, 160)])
def test_texture_statistics_are_the_shifted_products_they_stand_for(height, width):
    # Not square, so a shift read along the wrong axis shows; every shift overlaps its map at these sizes.
    torch.manual_seed(0)
    model = build_model("test_efficientnet_texture").eval()
    image = torch.randn(2, 3, height, width)
    with torch.inference_mode():
        served = model.forward_head(model.forward_features(image), pre_logits=True)
        expected = texture_statistics_by_definition(model, image)
    torch.testing.assert_close(served, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "architecture, side",
    [("test_efficientnet_texture", 64), ("test_efficientnet_multiscale", 32)],  # last stage maps 2x2 and 1x1
)
def test_stage_maps_too_small_for_a_statistic_give_zero_rather_than_nan(architecture, side):
    torch.manual_seed(0)
    model = build_model(architecture).eval()
    with torch.inference_mode():
        features = model.forward_head(model.forward_features(torch.randn(2, 3, side, side)), pre_logits=True)
    assert torch.isfinite(features).all()
