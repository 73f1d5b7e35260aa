"""`tradingfloor demo`: a whole market in one process, with documented users and simulated
participants."""
