"""Networks: 2D U-Nets for cardiac cine, the 3D U-Net generator and hierarchical discriminator of HAD-Net."""
