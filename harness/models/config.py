"""``ModelSpec`` lives with the other grid sections in ``harness.spec.model`` (spec owns every schema
section); this name stays for the modules that import it from here."""

from harness.spec.model import ModelSpec

__all__ = ["ModelSpec"]
