"""``python -m engine`` is ``llm-policy``."""

from engine.cli import main

raise SystemExit(main())
