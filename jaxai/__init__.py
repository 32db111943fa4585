"""jaxai: pure-functional JAX/Flax research code sharing one training infrastructure."""

__version__ = "0.1.0"
