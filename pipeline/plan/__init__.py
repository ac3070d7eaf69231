"""Plan: what to compute and how, from a validated Spec."""
