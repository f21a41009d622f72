"""Thin porcelain: argument parsing and output; no protocol logic lives here."""
