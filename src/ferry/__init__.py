"""ferry: move container images between registries, above all a whole Harbor into another Harbor."""

__version__ = "0.1.0"
