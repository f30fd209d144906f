"""Training and evaluation for the detector's models. Imports no Django; `moderation` adapts rows to it."""
