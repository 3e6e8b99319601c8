"""The classifiers under attack: architectures, training and the shipped weights."""

from ead_tutorial.models.architectures import ARCHITECTURES, CWMnistNet
from ead_tutorial.models.distill import distill, distillation_loss, soft_labels
from ead_tutorial.models.pretrained import WEIGHTS, pretrained
from ead_tutorial.models.train import TrainConfig, accuracy, train_classifier

__all__ = ["ARCHITECTURES", "CWMnistNet", "WEIGHTS", "pretrained", "TrainConfig", "accuracy", "distill",
           "distillation_loss", "soft_labels", "train_classifier"]
