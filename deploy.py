"""Preview, deploy and operate a stack with the Pulumi Automation API (README, "Deploying").

    python deploy.py preview --stack dev --backend-tag 24f45fd     # changes nothing
    python deploy.py up --stack dev --backend-tag 24f45fd          # writes the tag to Pulumi.dev.yaml
    python deploy.py migrate --stack dev --backend-tag 24f45fd     # the migration Job only
    python deploy.py status --stack dev
    python deploy.py take-over --stack dev                         # from make eks-deploy; hand-back to return
"""

import sys

from deploytool.cli import main

if __name__ == "__main__":
    sys.exit(main())
