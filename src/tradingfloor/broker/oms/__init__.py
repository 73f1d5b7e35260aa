"""Order management: the broker's order records, their lifecycle, contingent orders."""
