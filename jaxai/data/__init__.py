"""Host-side input: dataset loading (TFDS and offline sources), batching, per-process slicing."""
