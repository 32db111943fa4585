"""The one exception type for mistakes a user can fix (bad config, missing data, wrong workdir)."""


class UserError(Exception):
  """Bad input. The message says what is wrong and how to fix it; the CLI prints it without a traceback."""
