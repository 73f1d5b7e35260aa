"""The exchange (the venue): instruments, sessions, order books, matching, journal and recovery."""
