"""`python -m hearth` behaves exactly like the `hearth` console script."""

from hearth.cli import main

main()
