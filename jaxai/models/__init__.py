"""Flax Linen modules only: no optimizer, no jit, no data."""
