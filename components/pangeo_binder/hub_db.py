"""`python -m pangeo_binder.hub_db restore --from URL --to FILE`: the operator's side of the
hub database backups (docs/howto/restore.md). The code is the in-cluster script's own
(`hub/incluster/hub_db.py`), so the backup and the restore read the same format."""

from __future__ import annotations

import sys

from pangeo_binder.hub.incluster.hub_db import main

if __name__ == "__main__":
    sys.exit(main())
