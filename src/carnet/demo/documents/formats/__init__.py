"""One module per output format of a demo document: text, PDF, FHIR document Bundle, CDA.

Each format lays out the same drawn content (:class:`~carnet.demo.documents.model.Section`
lists), so a document type gains a format without its clinical content being written twice.
"""
