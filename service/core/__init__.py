"""The recommendation itself, shared by every door: the field table, validation, columns, derived
values, the classifier, the rules and how they combine, and the explanation. Nothing here imports
Flask, a database or a door."""
