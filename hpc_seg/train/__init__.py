"""Training: loops, losses, augmentations, metrics, checkpoints."""
