"""StyleGAN2 building blocks shared by every GAN-prior method in faceprior.

One implementation of each op (FIR resampling, fused bias + leaky ReLU, equalized-lr layers,
modulated convolution, the residual discriminator). GPEN, Panini-Net and MMRB-GAN build their
networks from these modules; only the module names differ where an official checkpoint layout
demands it.
"""

# Arguments of a StyleGAN2 prior small enough for the registry's contract examples (see
# ``Architecture.example``): every layer type is present, a forward pass takes milliseconds.
TINY_STYLEGAN2 = dict(style_dim=32, n_mlp=2, channel_multiplier=1, narrow=0.03125)
