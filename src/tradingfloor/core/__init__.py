"""Dependency-free building blocks shared by every subsystem: fixed-point units, limits, and
the login rate limiter and lockout rules."""
