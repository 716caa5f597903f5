"""The cookie inventory: ``cookies.yaml`` loaded and validated, cookie expiry, and the built-in texts."""
