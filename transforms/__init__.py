"""Built-in transform families, written exactly as a user writes a plug-in."""
