"""truescore.api."""
