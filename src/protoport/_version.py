"""The version of protoport."""

__version__ = "0.1.0"
