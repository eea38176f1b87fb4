"""monitor: a self-hosted news-feed monitoring daemon.

Polls feeds on a schedule, stores every story once, matches stories against
watch rules and alerts through apprise.
"""

__version__ = "0.1.0"
