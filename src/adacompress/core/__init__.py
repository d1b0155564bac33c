"""What both sides of AdaCompress share: labels and answers, the objective an upload
is scored by, what a service accepts, the pretrained EfficientNet-Lite models and
their inference engine, image files on disk."""
