"""Protocol v1: constants, metrics engine, evaluation runner and result records."""
