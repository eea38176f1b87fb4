"""Comment-preserving editors of feeds.toml, watch.toml and alerts.toml, and OPML import/export."""
