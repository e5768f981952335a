"""`python -m hookline.cli <command>`."""

from hookline.cli import main

main()
