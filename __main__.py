"""`python -m naftiko`: the command line, as the `naftiko` script runs it."""

from .adapters.cli import main

raise SystemExit(main())
