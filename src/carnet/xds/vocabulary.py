"""The fixed words of XDS.b: namespaces, ebRIM object types, classification schemes, statuses.

Shared by both directions (``ebrim`` parses ebRIM 3.0 into Carnet's metadata, ``registry_objects``
writes Carnet's documents back as ebRIM). Values are those of IHE ITI TF-3 4.2.5 (metadata
identifiers) and 4.2.3 (attributes), and of the ebXML RegRep 3.0 schemas.
"""

from __future__ import annotations

from typing import Final

# --- namespaces (ebXML RegRep 3.0, IHE XDS.b, SOAP 1.2, WS-Addressing) ------------------------
RIM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
QUERY: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
RS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
LCM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
XDSB: Final = "urn:ihe:iti:xds-b:2007"
RMD: Final = "urn:ihe:iti:rmd:2017"
SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
WSA: Final = "http://www.w3.org/2005/08/addressing"
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SAML2: Final = "urn:oasis:names:tc:SAML:2.0:assertion"
XMLDSIG: Final = "http://www.w3.org/2000/09/xmldsig#"

# --- registry object types (TF-3 Table 4.2.5.1-1 and ebRIM) -----------------------------------
STABLE_DOCUMENT: Final = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
ON_DEMAND_DOCUMENT: Final = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
REGISTRY_PACKAGE: Final = (
    "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"
)
ASSOCIATION_OBJECT: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association"
CLASSIFICATION_OBJECT: Final = (
    "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
)
EXTERNAL_IDENTIFIER_OBJECT: Final = (
    "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier"
)

# --- DocumentEntry classification schemes and external identifiers ---------------------------
DOCUMENT_AUTHOR: Final = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DOCUMENT_CLASS_CODE: Final = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DOCUMENT_CONFIDENTIALITY_CODE: Final = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DOCUMENT_EVENT_CODE: Final = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
DOCUMENT_FORMAT_CODE: Final = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DOCUMENT_FACILITY_TYPE: Final = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DOCUMENT_PRACTICE_SETTING: Final = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DOCUMENT_TYPE_CODE: Final = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DOCUMENT_PATIENT_ID: Final = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DOCUMENT_UNIQUE_ID: Final = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"

# --- SubmissionSet ---------------------------------------------------------------------------
SUBMISSION_SET_CLASSIFICATION: Final = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
SUBMISSION_SET_AUTHOR: Final = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SUBMISSION_SET_CONTENT_TYPE: Final = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SUBMISSION_SET_PATIENT_ID: Final = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SUBMISSION_SET_SOURCE_ID: Final = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SUBMISSION_SET_UNIQUE_ID: Final = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"

# --- Folder ----------------------------------------------------------------------------------
FOLDER_CLASSIFICATION: Final = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"
FOLDER_CODE_LIST: Final = "urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5"
FOLDER_PATIENT_ID: Final = "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a"
FOLDER_UNIQUE_ID: Final = "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a"

# --- statuses (ebRIM StatusType) -------------------------------------------------------------
APPROVED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
SUBMITTED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Submitted"

# --- association types (TF-3 4.2.2) ----------------------------------------------------------
HAS_MEMBER: Final = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC: Final = "urn:ihe:iti:2007:AssociationType:RPLC"
APND: Final = "urn:ihe:iti:2007:AssociationType:APND"
XFRM: Final = "urn:ihe:iti:2007:AssociationType:XFRM"
XFRM_RPLC: Final = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
SIGNS: Final = "urn:ihe:iti:2007:AssociationType:signs"
IS_SNAPSHOT_OF: Final = "urn:ihe:iti:2010:AssociationType:IsSnapshotOf"
UPDATE_AVAILABILITY_STATUS: Final = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
SUBMIT_ASSOCIATION: Final = "urn:ihe:iti:2010:AssociationType:SubmitAssociation"
RELATIONSHIP_TYPES: Final = frozenset({RPLC, APND, XFRM, XFRM_RPLC, SIGNS, IS_SNAPSHOT_OF})

# --- registry response statuses and error codes (TF-3 Table 4.2.4.1-2) -----------------------
SUCCESS: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
PARTIAL_SUCCESS: Final = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
ERROR_SEVERITY: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
WARNING_SEVERITY: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"

# --- code systems Carnet writes in classifications -------------------------------------------
CONFIDENTIALITY_SCHEME: Final = "2.16.840.1.113883.5.25"
LOINC_OID: Final = "2.16.840.1.113883.6.1"
# The French DMP's masking codes (ANS CI-SIS, JDV_J07-XdsConfidentialityCode-CISIS): a document
# masked from professionals, a document not yet shown to the patient.
DMP_CONFIDENTIALITY_SCHEME: Final = "1.2.250.1.213.1.1.4.13"
MASKED_FROM_PROFESSIONALS: Final = "MASQUE_PS"
HIDDEN_FROM_PATIENT: Final = "INVISIBLE_PATIENT"

# --- transactions (SOAP actions) -------------------------------------------------------------
ITI18_ACTION: Final = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI18_RESPONSE_ACTION: Final = "urn:ihe:iti:2007:RegistryStoredQueryResponse"
ITI57_ACTION: Final = "urn:ihe:iti:2010:UpdateDocumentSet"
ITI57_RESPONSE_ACTION: Final = "urn:ihe:iti:2010:UpdateDocumentSetResponse"


def rim(tag: str) -> str:
    """The Clark name (``{namespace}tag``) of an ebRIM 3.0 element."""
    return f"{{{RIM}}}{tag}"


# --- Carnet's own identifiers in XDS ---------------------------------------------------------
# XDS names assigning authorities by OID. Carnet's own arc is a UUID-derived OID (ITU-T X.667,
# "2.25.<UUID as an integer>"), which needs no registration and collides with nobody's.
CARNET_OID: Final = "2.25.172748820163059396319419691776552101171"
# Carnet is the one repository of its documents (repositoryUniqueId) and its own community.
REPOSITORY_UNIQUE_ID: Final = f"{CARNET_OID}.2"
HOME_COMMUNITY_ID: Final = f"urn:oid:{CARNET_OID}.3"
# The code systems Carnet's own codes belong to, where no OID exists for them.
CARNET_FORMAT_SCHEME: Final = "urn:carnet:format"
CARNET_FACILITY_SCHEME: Final = "urn:carnet:facility-type"
CARNET_PRACTICE_SETTING_SCHEME: Final = "urn:carnet:practice-setting"
