"""`python -m analyzer` runs the `smtpfw` command."""

from analyzer.cli import main

raise SystemExit(main())
