"""IHE XDS.b, the SOAP way in that certified practice and hospital software already speaks.

ITI-41 (provide and register), ITI-18 (registry stored query), ITI-43 (retrieve) and ITI-57
(update) over SOAP 1.2 with MTOM, mapped onto the same document services, policy and audit
trail as MHD.
"""
