"""The detect stage: score fetched uploads in batches, turn verdicts into tags (the tag policy), heatmaps and re-scans
(hash-bank look-backs, re-scores after a promotion)."""
