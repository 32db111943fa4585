"""GTP coordinates <-> action indices (host side).

Points are indexed `p = row * size + col`, row 0 = the top row as displayed (GTP row `size`), col 0 =
column 'A'. GTP column letters skip 'I'. Action `size * size` is pass.
"""
COLUMNS = "ABCDEFGHJKLMNOPQRST"  # 19 letters, no 'I'


def action_to_gtp(action: int, size: int) -> str:
  """Action index -> GTP vertex ("D4") or "pass"."""
  action = int(action)
  if action == size * size:
    return "pass"
  if not 0 <= action < size * size:
    raise ValueError(f"action {action} is outside 0..{size * size} on a {size}x{size} board.")
  row, col = divmod(action, size)
  return f"{COLUMNS[col]}{size - row}"


def gtp_to_action(text: str, size: int) -> int:
  """GTP vertex ("D4", "d4") or "pass" -> action index; ValueError for anything else on this board."""
  vertex = str(text).strip().upper()
  if vertex == "PASS":
    return size * size
  letter, digits = vertex[:1], vertex[1:]
  if not letter or letter not in COLUMNS[:size] or not digits.isdigit():
    raise ValueError(f"{text!r} is not a vertex of a {size}x{size} board (expected e.g. 'D4' with a column "
                     f"in {COLUMNS[0]}..{COLUMNS[size - 1]} (no 'I'), a row in 1..{size}, or 'pass').")
  number = int(digits)
  if not 1 <= number <= size:
    raise ValueError(f"{text!r}: row {number} is outside 1..{size} on a {size}x{size} board.")
  return (size - number) * size + COLUMNS.index(letter)
