"""Zoo entries, one module per method family (plain data)."""
