"""Print a pip constraints file pinning each direct dependency to its lower bound.

CI installs the project a second time with these constraints, so a lower bound
in pyproject.toml that the code no longer works with fails CI instead of a
user's install (the same idea as uv's --resolution lowest-direct).
"""

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

project = tomllib.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml").read_text())["project"]
lines = [*project["dependencies"], *(line for extra in project.get("optional-dependencies", {}).values()
                                     for line in extra)]
pins: dict[str, str] = {}
for line in lines:
    requirement = Requirement(line)
    lower = [spec.version for spec in requirement.specifier if spec.operator == ">="]
    if lower:
        pins.setdefault(requirement.name, f"{requirement.name}=={lower[0]}")
print("\n".join(pins.values()))
