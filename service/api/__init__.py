"""HTTP handlers. Thin: parse, call a repository or service, answer."""
