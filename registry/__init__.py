"""Model registry: which model version serves (active) and which shadows it, and the detectors loaded for them."""
