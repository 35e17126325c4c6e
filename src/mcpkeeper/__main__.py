"""``python -m mcpkeeper``: the same CLI as the ``mcpkeeper`` command."""

from mcpkeeper.cli import main

if __name__ == "__main__":
    main()
