"""Credentials (where they come from) and the HTTP auth challenge (how they are used)."""
