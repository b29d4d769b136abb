// Benchmark page: filled in by apps/bench (see README).
