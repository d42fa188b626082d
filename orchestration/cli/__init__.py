"""The ``ponte`` command line. Each command group is a small module registered in :mod:`.app`."""
