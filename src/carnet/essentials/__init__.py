"""Essential data: blood group, allergies, treatments, vaccinations, emergency contacts and
advance directives — what a doctor needs first, and in an emergency."""
