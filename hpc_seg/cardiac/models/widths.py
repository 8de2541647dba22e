"""Default widths of the 2D U-Net, apart from the network so that configs import no torch."""

#: channels of the five decoder blocks, deepest first (segmentation_models_pytorch's default)
DEFAULT_DECODER_CHANNELS = (256, 128, 64, 32, 16)
