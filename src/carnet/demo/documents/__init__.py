"""Synthetic clinical documents of the demo population.

The texts and value tables live as data files in ``carnet/demo/data/``; this package draws
from them and lays the result out in one module per output format (``formats/``).
:mod:`carnet.demo.documents.catalogue` is the entry point: which document types exist,
which formats each can be rendered in, and :func:`~carnet.demo.documents.catalogue.render`.
"""
