"""The long-running daemon and its plumbing: metrics, sd_notify, privileges."""
