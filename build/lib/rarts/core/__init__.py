"""The job machinery every long job runs on: the epoch engine, checkpoints, signals, devices,
torch.distributed, the non-finite-loss stop, usage records and test faults."""
