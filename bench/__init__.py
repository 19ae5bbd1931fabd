"""The gateway's benchmark: a fast fake upstream, bounded load generators, and a runner that compares the
upstream called directly with the same upstream called through the gateway (docs/benchmarks.md)."""
