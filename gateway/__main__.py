"""`python -m gateway`: same as `hookline gateway`."""

import sys

from hookline.cli import main

main(["gateway", *sys.argv[1:]])
