"""Telling whether two records are the same child: names and their data, the engine, candidate search."""
