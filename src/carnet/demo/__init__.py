"""The demo population, loaded through Carnet's own services (``carnet demo``: ``loader``).

Nothing is imported here: the demo's card reader (``accounts``), which every HTTP worker of a
demo deployment imports, must not bring the loader's PDF generation with it (0.6 s of a
worker's start on a busy machine).
"""
