"""The partner organisations' REST API, version 1."""
