"""Tests of the broker's identity-and-access building blocks."""
