"""Identity and access: roles and permissions, passwords, tokens, TOTP MFA, API keys, rate limits.

The building blocks are pure (no database, no web framework, no wall clock; callers pass "now");
``service.py`` puts them together over the broker's database.
"""
