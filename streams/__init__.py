"""clickcast stream processing: faust workers, producer, CLI and settings."""
