"""`python -m triggers`: same as `hookline triggers`."""

import sys

from hookline.cli import main

main(["triggers", *sys.argv[1:]])
