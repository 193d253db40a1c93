"""clickcast features."""
