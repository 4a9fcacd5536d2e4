"""Factories that build real rows through Carnet's services."""
