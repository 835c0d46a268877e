"""``python -m glocal_cli`` runs the same command line as ``glocal``."""

from glocal_cli.cli.app import main

if __name__ == "__main__":
    main()
