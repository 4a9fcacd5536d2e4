"""Who may do what with a dossier: actors, SMART scopes, the patient's rules and the policy."""
