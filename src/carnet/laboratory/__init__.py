"""Laboratory results: HL7 v2 ORU^R01 reports turned into documents and structured results."""
