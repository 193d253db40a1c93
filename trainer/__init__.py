"""clickcast trainer."""
