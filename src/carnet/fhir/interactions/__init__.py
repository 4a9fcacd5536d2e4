"""Plain FHIR RESTful interactions (read, search) outside the IHE transactions."""
