"""What a network costs and scores on the machine and in the benchmark: latency, NATS-Bench lookups."""
