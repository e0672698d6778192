"""Real-data training tasks shared by the examples, the tests and the benchmarks."""
