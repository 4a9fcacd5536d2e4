"""The dossier's life: enrolment, invitation, opening, opposition, closure, export, retention."""
