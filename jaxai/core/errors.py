"""Re-export of `jaxai.errors.UserError` (leaf packages import it from there, without the core)."""
from jaxai.errors import UserError  # noqa: F401
