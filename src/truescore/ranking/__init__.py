"""truescore.ranking."""
