"""Carnet's Alembic migrations: ``env.py``, the revisions in ``versions/``, and partitioning."""
