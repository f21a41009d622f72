"""Air-gapped migration: an export to disk, its offline check, an import from it (issue 13)."""
