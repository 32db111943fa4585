"""Pure math shared by domains (losses, augmentation, ...). No state, no jit, no I/O."""
