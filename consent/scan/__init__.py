"""``consent scan``: a site crawled in headless Chromium, what it stores and contacts held against its inventory."""
