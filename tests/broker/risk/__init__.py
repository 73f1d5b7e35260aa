"""Tests of the broker's risk package."""
