"""Test node: connects only once the file named by START_WHEN (its environment) exists,
as a node with slow imports would late; startUpComplete waits for it. Then the plain
template."""
import os
import sys
import time

while not os.path.exists(os.environ["START_WHEN"]):
    time.sleep(0.02)

from homegear import Homegear  # noqa: E402

hg = Homegear(sys.argv[1], None, sys.argv[2], None)
while hg.connected():
    time.sleep(1)
