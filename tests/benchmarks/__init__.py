"""End-to-end and component benchmarks: `clickcast bench e2e|components` (see tests/benchmarks/e2e.py)."""
