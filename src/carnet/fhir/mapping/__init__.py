"""Carnet's records as FHIR R4 resources."""
