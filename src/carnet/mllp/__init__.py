"""The MLLP way in: HL7 v2 messages from laboratory and hospital systems over TCP.

The listener frames, authenticates the sender as a registered feeding system, hands the message
to the laboratory domain and answers with an ACK only once what it stored is committed.
"""
