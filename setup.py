"""Everything but the package list lives in setup.cfg.

The package list is computed here because the recipes ship inside the wheel as ``dvtr_bench/baselines`` while the
checkout keeps them in the top-level ``baselines/`` folder, their one source: setup.cfg's ``find:`` cannot add a
package that lives outside ``dvtr_bench/``.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["dvtr_bench", "dvtr_bench.*"]) + ["dvtr_bench.baselines"],
    package_dir={"dvtr_bench.baselines": "baselines"},
    package_data={"dvtr_bench": ["py.typed", "**/*.json", "**/*.md"], "dvtr_bench.baselines": ["*.json"]},
)
