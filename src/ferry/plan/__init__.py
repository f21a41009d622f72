"""Inputs become plans: lists of Jobs (source ref → destination ref)."""
