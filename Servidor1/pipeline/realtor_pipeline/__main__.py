"""`python -m realtor_pipeline`: see realtor_pipeline.cli."""

from realtor_pipeline.cli import main

raise SystemExit(main())
