"""A small NATS-Bench benchmark in the real on-disk format (fast mode), for the tests: the real
`nats_bench` API reads it (the writer is the rehearsal's, `rarts.data.rehearsal`)."""

from rarts.data.rehearsal import write_nats_benchmark as write_benchmark  # noqa: F401
