"""ead_tutorial: the Carlini & Wagner and EAD attacks, built one component at a time."""

__version__ = "0.1.0"

from ead_tutorial.devices import device

__all__ = ["device", "__version__"]
