"""``python -m backstop``: the backstop command line installed with this package."""

import os
import subprocess
import sys

from . import find_backstop_bin


def main():
    bin = find_backstop_bin()
    if sys.platform == "win32":
        # No exec on Windows: run it and pass its exit code on.
        sys.exit(subprocess.call([bin, *sys.argv[1:]]))
    os.execv(bin, [bin, *sys.argv[1:]])


if __name__ == "__main__":
    main()
