"""The errors a user acts on: each message names what went wrong and where. `rarts` prints them
without a traceback and exits 1. No heavy imports here."""


class DatasetError(RuntimeError):
    """Data missing, corrupt or malformed: the message names the file and how to get it again."""


class NonFiniteLoss(RuntimeError):
    """A loss or a weight became NaN or infinite: the message names the job, epoch and step."""


class Busy(RuntimeError):
    """Another live process holds the lock (e.g. on a checkpoint)."""


class DiskFull(OSError):
    """A write failed for lack of space: the message names the file."""


class InputError(ValueError):
    """A file or value the user gave is missing, unreadable or malformed: the message names the file
    (or the option) and what is wrong with it, with the missing key where one is missing."""


class MissingFile(InputError, FileNotFoundError):
    """InputError for a path that does not exist (still a FileNotFoundError to callers that expect one)."""


class DeviceError(RuntimeError):
    """The job was given GPUs (or asked for CUDA) that this torch build cannot use: the message names
    the build, the driver and the GPUs found, and how to install a matching build."""


USER_ERRORS = (DatasetError, NonFiniteLoss, Busy, DiskFull, DeviceError, InputError)
