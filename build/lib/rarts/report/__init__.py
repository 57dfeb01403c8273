"""From the jobs' files to what a researcher reads: the paper's numbers, the tables, the verdicts,
the figures and MLflow."""
