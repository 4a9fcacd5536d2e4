"""HL7 CDA R2 documents: the header read and checked, the body's PDF found, lab reports written."""
