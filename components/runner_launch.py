# The migration Job's entry point, passed to `python -c` in the pod template (never shipped in
# a ConfigMap: whoever can update ConfigMaps in the namespace must not be able to change it).
# It runs the runner zipapp only if the archive's bytes have the sha256 the pod template names,
# and runs those very bytes: they are read once, checked, and loaded from an anonymous memory
# file, so a ConfigMap update landing between the check and the import cannot slip in.
#
#   python -c <this file> <zipapp path> <expected sha256> [runner arguments...]
#
# Standard library only, Python 3.8+ on Linux (os.memfd_create), as in the app's backend image.
import hashlib
import os
import runpy
import sys

path, expected = sys.argv[1], sys.argv[2]
with open(path, "rb") as archive:
    data = archive.read()
actual = hashlib.sha256(data).hexdigest()
if actual != expected:
    message = (
        "refusing to run the migration runner " + path + ": its sha256 is " + actual + ", the Job's pod template "
        "expects " + expected + ", so its ConfigMap was changed outside Pulumi. Nothing ran. Restore it with "
        "`deploy.py up` (or `pulumi up`), and find out who changed it.\n"
    )
    sys.stderr.write(message)
    try:
        with open(os.environ.get("TERMINATION_LOG", "/dev/termination-log"), "w") as log:
            log.write(message)
    except OSError:
        pass
    sys.exit(2)
memory = os.memfd_create("runner.pyz")
view = memoryview(data)
while view:
    view = view[os.write(memory, view):]
sys.argv = [path] + sys.argv[3:]
runpy.run_path("/proc/self/fd/%d" % memory, run_name="__main__")
