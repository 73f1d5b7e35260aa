"""Browser tests of the web terminal (headless Chromium via playwright)."""
