"""Site configuration: the typed model and its loader."""

from gateway.config.load import ConfigError, Problem, load_site, parse_duration
from gateway.config.model import SiteConfig

__all__ = ["ConfigError", "Problem", "SiteConfig", "load_site", "parse_duration"]
