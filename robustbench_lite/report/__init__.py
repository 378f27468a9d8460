"""Report: the analysis shown to a person. Takes an Analysis (tables only, never records); gives
figures, sentences computed from the numbers, report.html, report.md and preview grids."""
