"""The web terminal: static HTML, CSS and JavaScript served by the broker app (no build step)."""
