"""Reading back what was stored: search, status, report, triage, feed health, backtests."""
