"""truescore.text."""
