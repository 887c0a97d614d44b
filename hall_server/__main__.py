"""`python -m hall_server` runs the same command line as the `hall-server` script."""

from hall_server.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
