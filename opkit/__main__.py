from opkit.cli import entry

entry()
