"""Benchmarks of the provenance ledger (see benchmarks/README.md); not part of the test suite."""
