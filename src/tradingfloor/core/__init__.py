"""Dependency-free building blocks shared by every subsystem: fixed-point units and time."""
