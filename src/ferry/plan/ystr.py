"""The strings of a YAML rules file (:mod:`ferry.plan.yaml_text`), apart from the reader so that the
checks of :mod:`ferry.plan.files` know them without importing PyYAML."""

from __future__ import annotations


class YStr(str):
    """A string read from YAML: ``line`` is 1-based; ``plain`` is False when it was quoted."""

    line: int | None = None
    plain: bool = False
