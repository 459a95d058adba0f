"""``python -m exchange`` is ``corpusx``."""

from exchange.cli import main

main()
