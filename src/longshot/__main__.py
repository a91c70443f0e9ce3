"""`python -m longshot` runs the command line."""

from longshot.cli import main

if __name__ == "__main__":
    main()
