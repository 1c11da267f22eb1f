"""``python -m scopenet.services.ipam`` = ``scopenet service ipam``."""

from scopenet.services.cli import main

if __name__ == "__main__":
    main(["service", "ipam"])
