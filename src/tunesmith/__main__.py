"""`python -m tunesmith`: the `tunesmith` command, where its entry point is not on PATH."""

from tunesmith.cli import main

main()
