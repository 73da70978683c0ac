"""Contract suites and test doubles for tunesmith's protocols, usable by third-party implementations."""
