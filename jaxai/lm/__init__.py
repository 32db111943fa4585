"""Language-model library: text generation from a character model (jaxai.lm.generate). The sampling
command is `python -m jaxai.sample`."""
