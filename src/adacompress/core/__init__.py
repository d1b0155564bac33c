"""What both sides of AdaCompress share: labels and answers, what a service accepts,
the pretrained EfficientNet-Lite models, image files on disk, registries."""
