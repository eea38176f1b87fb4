"""Alerts: destinations, routing, rendering, the outbox and its dispatcher."""
