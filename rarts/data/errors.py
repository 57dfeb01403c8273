class DatasetError(RuntimeError):
    """A dataset is missing or corrupt; the message names the path and how to fix it."""
