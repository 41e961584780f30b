"""Training losses shared by the methods: pixel, adversarial (+ R1, path length,
feature matching), perceptual (VGG) and identity (face-recognition embedding)."""
