"""``python -m scopenet.services.api`` = ``scopenet service api``."""

from scopenet.services.cli import main

if __name__ == "__main__":
    main(["service", "api"])
