"""Hyperparameter search: Ray Tune trials sampled by Optuna, and study inspection."""
