"""Example data bundled with the package (the demo's CSV and the script that makes it)."""

from pathlib import Path

TICKETS_CSV = Path(__file__).with_name("it-tickets.csv")
