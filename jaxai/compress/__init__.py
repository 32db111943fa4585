"""Model compression and transfer: pruning (an optax wrapper), quantization and LoRA (through qwix),
distillation losses, and the model transforms a domain applies from its config."""
