"""Test node: a script that never imports homegear (nothing in it arms a parent-death
signal); it writes its pid to the file named by $PLAIN_PID_FILE, then sleeps."""
import os
import time

path = os.environ["PLAIN_PID_FILE"]
with open(path + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(path + ".tmp", path)
while True:
    time.sleep(1)
