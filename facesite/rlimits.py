"""The open-file limit: every websocket is a file descriptor."""

import resource


def raise_open_file_limit() -> int:
    """Lift this process's soft limit on open files to its hard limit, and return it.

    Shells often start programs with a soft limit of 1,024, which would refuse /faces clients past
    about a thousand; the hard limit (often 500,000 or more) is ours to take.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard
