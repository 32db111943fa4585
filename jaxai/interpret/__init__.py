"""Interpretability of image classifiers: saliency maps, their sanity checks, and overlays for display.

A library: jax, flax and numpy only. Every function takes a classifier `apply(variables, x) -> logits`
with x float pixels in [0, 1] (B, H, W, C) and explains a `target` class per example.
"""
