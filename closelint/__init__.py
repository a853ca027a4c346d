"""closelint: a static resource-lifecycle linter for Go and Rust."""

__version__ = "0.1.0"
