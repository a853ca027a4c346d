"""Cargo manifests and lock files as Cargo reads them: semver requirements, manifest and lock models,
feature resolution. Pure data over tomllib values; no tree-sitter, nothing run."""
