"""truescore.store."""
