"""Underscore files in a plug-in folder are never loaded: importing this one fails loudly."""
raise RuntimeError("_helpers.py must not be loaded as a plug-in")
