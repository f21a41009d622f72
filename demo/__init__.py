"""``make demo``: two local Harbors, demo projects seeded by skopeo, one ``ferry migrate``."""
