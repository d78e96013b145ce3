"""``python -m evokeras``: the ``evokeras`` console script."""

from evokeras.app.cli import main

raise SystemExit(main())
