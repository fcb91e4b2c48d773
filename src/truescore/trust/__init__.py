"""truescore.trust."""
