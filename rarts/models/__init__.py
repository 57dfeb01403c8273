"""Networks built from a found architecture (evaluation / retraining networks)."""
