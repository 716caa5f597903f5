"""The HTTP plumbing every route shares: errors, admin tokens, security headers, rate limits, logs, metrics."""
