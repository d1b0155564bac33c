"""PIRL: pretext-invariant representation learning (Misra & van der Maaten, CVPR 2020).

Self-supervised image features: the representation of an image and of its
jigsaw-shuffled version are made to agree with an NCE loss against a memory bank of
negatives (docs/formulas.md, "PIRL"). One concept per module: ``data``,
``transforms``, ``tensor_data``, ``batch_transforms``, ``resnet``, ``model``,
``memory_bank``, ``loss``, ``jigsaw_baseline``, ``train``, ``evaluate``, ``cli``.
Imports nothing from ``adacompress``; see README.md beside this file.
"""

from pirl.batch_transforms import BatchViews
from pirl.data import ImageDataset, ImageSource
from pirl.evaluate import extract_features, load_encoder
from pirl.jigsaw_baseline import JigsawClassifier, max_hamming_permutations
from pirl.loss import PIRLLoss, info_nce_loss, nce_loss
from pirl.memory_bank import MemoryBank
from pirl.model import PIRLModel
from pirl.resnet import ResNet, resnet
from pirl.tensor_data import DecodedDataset, DecodedImages
from pirl.train import TrainSettings
from pirl.transforms import EvalView, ImageView, Jigsaw, Rotation, Views

__all__ = [
    "BatchViews",
    "DecodedDataset",
    "DecodedImages",
    "ImageDataset",
    "EvalView",
    "ImageSource",
    "ImageView",
    "Jigsaw",
    "JigsawClassifier",
    "MemoryBank",
    "PIRLLoss",
    "PIRLModel",
    "ResNet",
    "Rotation",
    "TrainSettings",
    "Views",
    "extract_features",
    "info_nce_loss",
    "load_encoder",
    "max_hamming_permutations",
    "nce_loss",
    "resnet",
]
