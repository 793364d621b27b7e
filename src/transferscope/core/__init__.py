"""The little that the three parts share: models, cache, report, errors."""
