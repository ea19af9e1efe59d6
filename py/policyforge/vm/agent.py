#!/usr/bin/env python3
"""policyforge guest agent: runs inside the VM, serves commands on a virtio-serial port.

Protocol, one JSON object per line each way:
  host -> guest  {"id": 7, "sh": "insmod x.ko && echo ok", "timeout": 60, "cwd": "/work/repo"}
  guest -> host  {"id": 7, "rc": 0, "stdout": "ok\n", "stderr": "", "timed_out": false}
The first line the agent writes is {"id": 0, "ready": true}. Commands run one at a time, in
their own session so a timeout kills the whole process group. Python stdlib only: this file
is copied into the image by scripts/vm-provision.sh.
"""
import json
import os
import signal
import subprocess
import sys


def run_command(request: dict) -> dict:
    timeout = float(request.get("timeout", 600))
    proc = subprocess.Popen(["/bin/bash", "-c", request["sh"]], cwd=request.get("cwd") or "/",
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return {"id": request.get("id"), "rc": proc.returncode, "timed_out": timed_out,
            "stdout": out.decode(errors="replace"), "stderr": err.decode(errors="replace")}


def serve(port_path: str) -> None:
    with open(port_path, "r+b", buffering=0) as port:
        port.write(json.dumps({"id": 0, "ready": True}).encode() + b"\n")
        pending = b""
        while True:
            chunk = port.read(65536)
            if not chunk:          # host not connected yet / disconnected: keep serving
                import time
                time.sleep(0.2)
                continue
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if not line.strip():
                    continue
                try:
                    request = json.loads(line)
                    reply = {"id": request.get("id"), "pong": True} if request.get("ping") \
                        else run_command(request)
                except Exception as e:   # a bad request must not kill the agent
                    reply = {"id": None, "rc": 255, "stdout": "", "stderr": f"agent: {e}\n",
                             "timed_out": False}
                port.write(json.dumps(reply).encode() + b"\n")


if __name__ == "__main__":
    serve(sys.argv[1] if len(sys.argv) > 1 else "/dev/virtio-ports/pf.agent")
