"""The demo population, loaded through Carnet's own services (``carnet demo``)."""

from carnet.demo.loader import DemoReport, load_demo

__all__ = ["DemoReport", "load_demo"]
