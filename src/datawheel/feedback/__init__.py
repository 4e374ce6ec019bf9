"""Interactions, votes, corrections and outcomes."""
