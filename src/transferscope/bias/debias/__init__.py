"""Debiasing by retrieval from the UNSC record and Reflexion-style self-reflection (spec part 3)."""
