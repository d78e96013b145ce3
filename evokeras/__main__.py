"""``python -m evokeras``: the ``evokeras`` console script, with the studies shipped in the
package (``evokeras study NAME``)."""

from __future__ import annotations

from collections.abc import Sequence

from evokeras.app import cli
from evokeras.studies import STUDIES


def main(argv: Sequence[str] | None = None) -> int:
    """The console script (:func:`evokeras.app.cli.main` with :data:`evokeras.studies.STUDIES`)."""
    return cli.main(argv, studies=STUDIES)


if __name__ == "__main__":
    raise SystemExit(main())
