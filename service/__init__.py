"""heeldrop: heel-drop recommendations that explain themselves."""

__version__ = "0.1.0"
