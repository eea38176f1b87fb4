"""The config folder: load and check monitor.toml and feeds.toml, positions, durations, paths."""
