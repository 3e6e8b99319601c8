"""The classifiers under attack: architectures, training and the shipped weights."""

from ead_tutorial.models.adversarial import craft_training_examples, train_adversarial
from ead_tutorial.models.architectures import ARCHITECTURES, CWMnistNet
from ead_tutorial.models.distill import distill, distillation_loss, soft_labels
from ead_tutorial.models.pretrained import WEIGHTS, distilled_temperatures, pretrained, training_record
from ead_tutorial.models.train import TrainConfig, accuracy, train_classifier

__all__ = ["ARCHITECTURES", "CWMnistNet", "WEIGHTS", "TrainConfig", "accuracy", "craft_training_examples", "distill",
           "distillation_loss", "distilled_temperatures", "pretrained", "soft_labels", "train_adversarial",
           "train_classifier", "training_record"]
