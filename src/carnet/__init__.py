"""Carnet: the shared health record — one secure dossier per insured person."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("carnet")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
