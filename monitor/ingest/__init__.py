"""Ingest: the pipeline of one poll (fetch, parse, match, store, plan alerts) and its stages."""
