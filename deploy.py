"""Preview or deploy a stack with the Pulumi Automation API.

    python deploy.py up --stack dev --backend-tag 672425b --frontend-tag 672425b
    python deploy.py preview --stack dev --backend-tag 672425b
"""

import sys

from deploytool.cli import main

if __name__ == "__main__":
    sys.exit(main())
