"""The ``search:`` section lives with the other grid sections in ``harness.spec.search`` (spec owns
every schema section); these names stay for the modules that import them from here."""

from harness.spec.search import ParamSpec, SearchSpec, parse_search

__all__ = ["ParamSpec", "SearchSpec", "parse_search"]
