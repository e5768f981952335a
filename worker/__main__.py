"""`python -m worker`: same as `hookline worker`."""

import sys

from hookline.cli import main

main(["worker", *sys.argv[1:]])
