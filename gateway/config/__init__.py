"""Site configuration: the typed model and its loader."""

from gateway.config.load import load_site
from gateway.config.model import SiteConfig
from gateway.config.reader import ConfigError, ConfigFileError, Problem, parse_duration

__all__ = ["ConfigError", "ConfigFileError", "Problem", "SiteConfig", "load_site", "parse_duration"]
