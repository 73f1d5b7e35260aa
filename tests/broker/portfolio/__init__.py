"""Tests of the broker's portfolio package."""
