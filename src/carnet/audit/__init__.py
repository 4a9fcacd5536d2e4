"""The audit trail: every event on patient data, append-only and hash-chained."""
