"""Architecture search: the algorithms (strategies over one step) and the loop that owns data,
schedules, logging and checkpoints."""
