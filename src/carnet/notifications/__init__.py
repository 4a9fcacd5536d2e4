"""Notifications to the patient: an inbox kept by Carnet, and e-mail through an SMTP outbox."""
