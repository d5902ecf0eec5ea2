"""``DataSpec``/``SyntheticSpec`` live with the other grid sections in ``harness.spec.data`` (spec owns
every schema section); these names stay for the modules that import them from here."""

from harness.spec.data import DataSpec, SyntheticSpec

__all__ = ["DataSpec", "SyntheticSpec"]
