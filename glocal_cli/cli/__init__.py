"""The ``glocal`` command line: thin Typer layers over the library."""
