"""The classifiers of Carlini & Wagner (2017), Table I."""

from __future__ import annotations

from torch import nn


class CWMnistNet(nn.Module):
    """C&W's MNIST network: four 3x3 convolutions, two max-pools, FC 200, FC 200, FC 10.

    Input: float tensor B x 1 x 28 x 28 with pixels in [0, 1].
    Output: the logits Z(x), B x 10 (no softmax).
    """

    def __init__(self, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(),   # 28 -> 26
            nn.Conv2d(32, 32, 3), nn.ReLU(),  # 26 -> 24
            nn.MaxPool2d(2),                  # 24 -> 12
            nn.Conv2d(32, 64, 3), nn.ReLU(),  # 12 -> 10
            nn.Conv2d(64, 64, 3), nn.ReLU(),  # 10 -> 8
            nn.MaxPool2d(2),                  # 8 -> 4
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 200), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(200, 200), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(200, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class SmallReluNet(nn.Sequential):
    """A fully connected 784-h-h-10 ReLU network (h = 8 by default), small enough for the exact minimum by MILP.

    Input: float tensor B x 1 x 28 x 28 with pixels in [0, 1]. Output: the logits, B x 10.
    """

    def __init__(self, hidden: int = 8):
        super().__init__(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 10))


ARCHITECTURES = {"mnist": CWMnistNet, "mnist-small-relu": SmallReluNet}
