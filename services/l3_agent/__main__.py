"""``python -m scopenet.services.l3_agent`` = ``scopenet service l3-agent``."""

from scopenet.services.cli import main

if __name__ == "__main__":
    main(["service", "l3-agent"])
