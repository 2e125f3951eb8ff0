"""``python -m moeheads``: the command-line tool."""

from moeheads.cli import main

main()
