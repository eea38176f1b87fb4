"""A small watch for tests that need a rule to fire: Chinese drones, in English."""

CHINA_DRONES_WATCH = """
[entity.china]
aliases = ["China", "Chinese", "Beijing"]

[group.drones]
terms = ["drone*"]

[rule.china_drones]
description = "Chinese drones in the war"
query = '@china NEAR/10 #drones'
severity = "warning"
tags = ["drones"]
"""
