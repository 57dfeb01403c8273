"""What a target costs: `rarts plan`, the step table it prices jobs with (`rarts gpu-check`), and the
rehearsal's report."""
