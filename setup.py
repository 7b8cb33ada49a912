"""Package discovery for setuptools; everything else is in pyproject.toml.

`[tool.setuptools.packages.find]` alone cannot see opkit.templates (it lives in templates/, mapped by
package-dir), so the packages are found here: every opkit* package under opkit/, plus opkit.templates.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["opkit", "opkit.*"]), "opkit.templates"])
