"""StyleGAN2 building blocks shared by every GAN-prior method in faceprior.

One implementation of each op (FIR resampling, fused bias + leaky ReLU, equalized-lr layers,
modulated convolution, the residual discriminator). GPEN, Panini-Net and MMRB-GAN build their
networks from these modules; only the module names differ where an official checkpoint layout
demands it.
"""
