"""The package version, in a module of its own so that anything may read it without importing the rest."""
__version__ = "0.4.0"
