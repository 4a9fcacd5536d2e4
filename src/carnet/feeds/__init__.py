"""Feeding systems: the laboratory and hospital systems registered to send HL7 v2 messages.

Each maps its MSH-3/MSH-4 (and its client certificate) to a directory organisation; the
messages it sent are remembered by control id so that a resend is answered, not stored twice.
"""
