"""The consent log: recording choices, visitors' receipts and history, statistics, retention, erasure."""
