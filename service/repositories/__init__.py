"""Data access. Every database call of the service lives in these modules."""
