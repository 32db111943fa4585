"""Language-model tools: sampling from a trained character model (`python -m jaxai.lm.sample`)."""
