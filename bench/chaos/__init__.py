"""Reliability runs: a hostile feed server, a chaos run and a crash run against `monitor run`."""
