"""``python -m pytest_exp``: see :mod:`pytest_exp.cli`."""

from __future__ import annotations

from pytest_exp.cli import main

raise SystemExit(main())
