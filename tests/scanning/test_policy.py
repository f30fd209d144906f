import pytest

from scanning.policy import decide


@pytest.mark.parametrize(
    ("score", "verdict"),
    [
        (0.95, "ai-generated"),
        (0.61, "ai-generated"),
        (0.59, "needs-review"),
        (0.41, "needs-review"),
        (0.39, "likely-real"),
        (0.0, "likely-real"),
    ],
)
def test_scores_near_the_threshold_go_to_review(score, verdict):
    assert decide(score, threshold=0.5, review_margin=0.1).verdict == verdict


def test_zero_margin_never_asks_for_review():
    assert decide(0.5, threshold=0.5, review_margin=0.0).verdict == "ai-generated"
    assert decide(0.4999, threshold=0.5, review_margin=0.0).verdict == "likely-real"
