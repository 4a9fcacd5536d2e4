"""The FHIR R4 (4.0.1) way in, at ``/fhir``: IHE MHD document sharing and the directory."""
