"""Sample media for tests and the demo archive, generated at run time."""
