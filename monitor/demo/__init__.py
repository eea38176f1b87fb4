"""`monitor demo`: a newcomer's tour of the whole system, with no network and no setup.

Sample feeds (`feeds/*.toml`, made-up stories in English, Ukrainian and
Russian, some on the shipped watch's topic) are served on 127.0.0.1 and the
real daemon runs against them with alerts printed to the console.
"""

from monitor.demo.run import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
