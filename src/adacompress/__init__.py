"""AdaCompress: learn, image by image, how hard a photo can be JPEG-compressed before a
cloud vision service's answer changes (Li et al., ACM MM 2019, arXiv 1909.08148)."""

__version__ = "0.1.0"
