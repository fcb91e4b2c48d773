"""truescore.reliability."""
