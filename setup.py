"""Package layout (the metadata is in pyproject.toml).

The design card keeps the plugin folders `methods/` and `protocols/` at the top of the repository;
they install inside the one import namespace as `harness.methods` and `harness.protocols`. A mapped
package-dir is not searched by `[tool.setuptools.packages.find]`, so the package list is built here
from the folders: a new sub-package needs no edit.
"""

from setuptools import find_packages, setup

ROOTS = {"harness": "harness", "harness.methods": "methods", "harness.protocols": "protocols"}


def packages() -> list[str]:
    out = []
    for name, folder in ROOTS.items():
        out.append(name)
        out += [f"{name}.{sub}" for sub in find_packages(where=folder)]
    return sorted(out)


setup(package_dir=ROOTS, packages=packages())
