"""clickcast deploy."""
