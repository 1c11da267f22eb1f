"""``python -m scopenet.services.topology`` = ``scopenet service topology``."""

from scopenet.services.cli import main

if __name__ == "__main__":
    main(["service", "topology"])
