"""User-facing errors: one line that names the problem and the fix, exit code 2."""


class UserError(Exception):
    """A mistake in the user's input (flag, file, config).

    The command-line layer prints ``error: <message>`` and exits with code 2,
    without a traceback. The message must say what was wrong and how to fix it.
    """

    exit_code = 2
