"""Corpora of bad input: broken mapping files, hostile webhook deliveries, malformed API answers."""
