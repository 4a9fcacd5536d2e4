"""IHE Mobile access to Health Documents (MHD): one module per transaction."""
