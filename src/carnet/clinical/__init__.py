"""Structured clinical data beside the documents: facts taken from what arrives (issue 20)."""
