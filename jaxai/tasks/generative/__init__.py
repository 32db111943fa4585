"""Generative models of images: GANs (gan.py), VAEs and IWAEs (vae.py), text-to-image with a VQ-VAE
tokenizer and the project's GPT (text2image.py). They share common.py (config keys, data, the
Generator interface, the sample grid) and quality.py (Frechet distance and class accuracy)."""
