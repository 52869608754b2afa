#!/usr/bin/env python3
"""The clients of limits_test.sh: floods, slow clients and real requests against a running
spindle-demo started with --header-timeout 1s --idle-timeout 2s --body-timeout 1s under
`ulimit -n 128`, and the assertions on what the server does (see limits_test.sh).

Usage: limits_clients.py PID SERVICE_PORT METRICS_PORT
Exit status 0 when every check passed; 1 (with a FAIL line per failed check) otherwise.
Loopback only; about 20 s.
"""

import os
import resource
import selectors
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
HEADER_TIMEOUT = 1.0  # --header-timeout of the demo under test
IDLE_TIMEOUT = 2.0  # --idle-timeout
BODY_TIMEOUT = 1.0  # --body-timeout
FLOOD = 200  # idle connections of a flood
ATTEMPT_LIMIT = 1.5  # a request that takes longer than this "hangs"
PROMPT = 0.5  # a refusal within this of the connect is prompt
CPU_LIMIT = 0.5  # the demo's CPU time over wall time during a flood must stay below this
CLK_TCK = os.sysconf("SC_CLK_TCK")

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def cpu_seconds(pid):
    """utime + stime of the process, in seconds (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def request(port, path, limit=ATTEMPT_LIMIT):
    """One GET. Returns (outcome, status, seconds): outcome "answered" (a complete response,
    status set), "refused" (503, connection refused or reset, or closed without an answer),
    or "hung" (nothing conclusive within `limit`)."""
    start = time.monotonic()
    s = socket.socket()
    s.settimeout(limit)
    try:
        s.connect((HOST, port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            left = limit - (time.monotonic() - start)
            if left <= 0:
                raise socket.timeout()
            s.settimeout(left)
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return "hung", 0, time.monotonic() - start
    except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
        return "refused", 0, time.monotonic() - start
    finally:
        s.close()
    took = time.monotonic() - start
    if not data.startswith(b"HTTP/1.1 "):
        return "refused", 0, took
    status = int(data[9:12])
    return ("refused" if status == 503 else "answered"), status, took


class Flood:
    """`count` TCP connections that send nothing. A watcher thread records, for each, when
    the server closed it and whether it sent bytes first (a 503) or closed silently (a
    timeout). With `reconnect`, a closed connection is opened again after `reconnect`
    seconds, so the flood lasts until stop()."""

    def __init__(self, port, count, reconnect=None):
        self.port = port
        self.reconnect = reconnect
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.closed = []  # (seconds open, bytes received) per connection the server closed
        self.connect_errors = 0
        self.pending = []  # (when, slot) reconnects due
        self.stopping = False
        for _ in range(count):
            self._open()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _open(self):
        s = socket.socket()
        try:
            s.connect((HOST, self.port))
        except OSError:
            s.close()
            with self.lock:
                self.connect_errors += 1
            return False
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ, {"since": time.monotonic(), "bytes": 0})
        return True

    def _watch(self):
        while not self.stopping:
            now = time.monotonic()
            due = [p for p in self.pending if p <= now]
            self.pending = [p for p in self.pending if p > now]
            for _ in due:
                self._open()
            for key, _ in self.sel.select(timeout=0.02):
                state = key.data
                try:
                    chunk = key.fileobj.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""  # reset: closed too
                if chunk:
                    state["bytes"] += len(chunk)
                    continue
                self.sel.unregister(key.fileobj)
                key.fileobj.close()
                with self.lock:
                    self.closed.append((time.monotonic() - state["since"], state["bytes"]))
                if self.reconnect is not None:
                    self.pending.append(time.monotonic() + self.reconnect)

    def results(self):
        with self.lock:
            return list(self.closed)

    def still_open(self):
        return len(self.sel.get_map())

    def stop(self):
        self.stopping = True
        self.thread.join()
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()


def attempts_until_answered(port, path, start, deadline, every=0.2):
    """GETs `path` every `every` s until one is answered 200 or `deadline` passes; returns
    [(outcome, status, seconds, at)] with `at` relative to `start`."""
    out = []
    while time.monotonic() < deadline:
        outcome, status, took = request(port, path)
        out.append((outcome, status, took, time.monotonic() - start))
        if outcome == "answered" and status == 200:
            break
        time.sleep(every)
    return out


def phase_static_flood(pid, port, metrics_port):
    print("-- a: 200 idle connections under ulimit -n 128 (opened once)", flush=True)
    cpu0 = cpu_seconds(pid)
    t0 = time.monotonic()
    flood = Flood(port, FLOOD)
    time.sleep(0.2)
    m_outcome, m_status, m_took = request(metrics_port, "/metrics", limit=2.0)
    check(m_outcome == "answered" and m_status == 200 and m_took < PROMPT,
          f"/metrics answers during the flood, within {PROMPT}s ({m_outcome} {m_status} in "
          f"{m_took * 1000:.1f}ms)")
    tries = attempts_until_answered(port, "/healthy", t0, t0 + HEADER_TIMEOUT + 2.0)
    for outcome, status, took, at in tries:
        print(f"      /healthy at +{at:.2f}s: {outcome} {status} in {took * 1000:.1f}ms")
    hung = [t for t in tries if t[0] == "hung"]
    check(not hung, f"no request to the service hangs during the flood ({len(hung)} did)")
    answered = [t for t in tries if t[0] == "answered" and t[1] == 200]
    first = answered[0][3] if answered else None
    check(bool(answered),
          "a request to /healthy is answered 200 within header timeout + 2 s of the flood"
          + (f" (after {first:.2f}s)" if answered else ""))
    refused = [t for t in tries if t[0] == "refused"]
    check(all(t[2] < PROMPT for t in refused),
          f"every refusal is prompt (< {PROMPT}s; slowest "
          f"{max([t[2] for t in refused], default=0) * 1000:.1f}ms)")
    time.sleep(max(0.0, t0 + HEADER_TIMEOUT + 2.0 - time.monotonic()))
    wall = time.monotonic() - t0
    cpu = cpu_seconds(pid) - cpu0
    closed = flood.results()
    still = flood.still_open()
    flood.stop()
    check(flood.connect_errors == 0, f"all {FLOOD} flood connections connect "
          f"({flood.connect_errors} failed)")
    check(still == 0 and len(closed) == FLOOD,
          f"the server closed every flood connection within header timeout + 2 s "
          f"({len(closed)} closed, {still} still open)")
    with_503 = [c for c in closed if c[1] > 0]
    silent = [c for c in closed if c[1] == 0]
    check(bool(with_503) and all(c[0] < PROMPT for c in with_503),
          f"connections over the cap are refused (503) at once ({len(with_503)}, slowest "
          f"{max([c[0] for c in with_503], default=0) * 1000:.0f}ms)")
    check(bool(silent) and all(HEADER_TIMEOUT * 0.8 <= c[0] <= HEADER_TIMEOUT + 1.5
                               for c in silent),
          f"accepted idle connections are closed after the header timeout ({len(silent)}, "
          f"{min([c[0] for c in silent], default=0):.2f}s to "
          f"{max([c[0] for c in silent], default=0):.2f}s)")
    check(cpu / wall < CPU_LIMIT,
          f"the demo does not spin: CPU {100 * cpu / wall:.1f}% of one core over {wall:.1f}s")


def wait_closed(s, limit):
    """Reads `s` until the server closes it; returns (seconds, bytes received) or None when
    it stayed open for `limit` seconds."""
    start = time.monotonic()
    data = b""
    while True:
        left = limit - (time.monotonic() - start)
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            return None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return time.monotonic() - start, data
        data += chunk


def keep_alive_idle(result):
    s = socket.create_connection((HOST, port_g), timeout=3)
    s.sendall(f"GET /healthy HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += s.recv(4096)
    result["ka_status"] = int(head[9:12])
    result["ka"] = wait_closed(s, IDLE_TIMEOUT + 3.0)
    s.close()


def silent_client(result):
    s = socket.create_connection((HOST, port_g), timeout=3)
    result["silent"] = wait_closed(s, HEADER_TIMEOUT + 3.0)
    s.close()


def drip_client(result):
    head = f"GET /healthy HTTP/1.1\r\nHost: {HOST}\r\nX-Drip: yes\r\n\r\n".encode()
    s = socket.create_connection((HOST, port_g), timeout=3)
    start = time.monotonic()
    sent = 0
    closed_at = None
    data = b""
    for i in range(len(head)):
        try:
            s.sendall(head[i:i + 1])
            sent += 1
        except OSError:
            break
        got = wait_closed(s, 0.3)
        if got is not None:
            closed_at = time.monotonic() - start
            data = got[1]
            break
    result["drip"] = (closed_at, sent, len(head), data)
    s.close()


def body_client(result):
    s = socket.create_connection((HOST, port_g), timeout=3)
    s.sendall(f"POST /healthy HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 100\r\n\r\nabc".encode())
    result["body"] = wait_closed(s, BODY_TIMEOUT + 3.0)
    s.close()


def phase_slow_clients():
    print("-- b, c: idle keep-alive, silent, byte-drip and slow-body clients", flush=True)
    result = {}
    threads = [threading.Thread(target=f, args=(result,))
               for f in (keep_alive_idle, silent_client, drip_client, body_client)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ka = result.get("ka")
    check(result.get("ka_status") == 200 and ka is not None and ka[1] == b""
          and IDLE_TIMEOUT - 0.3 <= ka[0] <= IDLE_TIMEOUT + 1.0,
          f"a keep-alive connection idle after its response is closed, silently, after the "
          f"idle timeout ({ka[0]:.2f}s)" if ka else "a keep-alive connection idle after its "
          "response is closed after the idle timeout (it stayed open)")
    silent = result.get("silent")
    check(silent is not None and silent[1] == b""
          and HEADER_TIMEOUT - 0.2 <= silent[0] <= HEADER_TIMEOUT + 1.0,
          f"a connection that sends nothing is closed, silently, after the header timeout "
          f"({silent[0]:.2f}s)" if silent else "a connection that sends nothing is closed "
          "after the header timeout (it stayed open)")
    closed_at, sent, total, data = result.get("drip", (None, 0, 0, b""))
    check(closed_at is not None and sent < total and data.startswith(b"HTTP/1.1 408")
          and HEADER_TIMEOUT - 0.2 <= closed_at <= HEADER_TIMEOUT + 1.0,
          f"a client that sends its head one byte per 300 ms is answered 408 and closed after "
          f"the header timeout ({closed_at if closed_at is None else round(closed_at, 2)}s, "
          f"{sent} of {total} bytes sent, got {data[:12]!r})")
    body = result.get("body")
    check(body is not None and body[1].startswith(b"HTTP/1.1 408")
          and BODY_TIMEOUT - 0.2 <= body[0] <= BODY_TIMEOUT + 1.0,
          f"a request whose body stops coming is answered 408 and closed after the body "
          f"timeout ({body[0]:.2f}s)" if body else "a request whose body stops coming is "
          "closed after the body timeout (it stayed open)")


def phase_persistent_flood(pid, port, metrics_port):
    print("-- d: 200 idle connections that reconnect when closed, for 3 s", flush=True)
    flood = Flood(port, FLOOD, reconnect=0.2)
    time.sleep(0.2)
    cpu0 = cpu_seconds(pid)
    t0 = time.monotonic()
    tries = []
    metrics = []
    while time.monotonic() - t0 < 3.0:
        tries.append(request(port, "/healthy"))
        if len(tries) % 4 == 1:
            metrics.append(request(metrics_port, "/metrics", limit=2.0))
        time.sleep(0.15)
    wall = time.monotonic() - t0
    cpu = cpu_seconds(pid) - cpu0
    churn = len(flood.results())
    flood.stop()
    outcomes = {}
    for t in tries:
        outcomes[t[0]] = outcomes.get(t[0], 0) + 1
    print(f"      {churn} flood connections closed by the server; /healthy outcomes {outcomes}; "
          f"slowest {max(t[2] for t in tries) * 1000:.1f}ms")
    check("hung" not in outcomes, f"no request to the service hangs ({outcomes})")
    check(all(t[2] < PROMPT for t in tries),
          f"each request is answered or refused within {PROMPT}s")
    check(all(m[0] == "answered" and m[1] == 200 and m[2] < PROMPT for m in metrics),
          f"/metrics answers every time, within {PROMPT}s "
          f"({[(m[0], m[1], round(m[2] * 1000, 1)) for m in metrics]})")
    check(churn > FLOOD, f"the flood churned ({churn} closes in {wall:.1f}s)")
    check(cpu / wall < CPU_LIMIT,
          f"the demo does not spin: CPU {100 * cpu / wall:.1f}% of one core over {wall:.1f}s")


def phase_out_of_descriptors(pid, port):
    print("-- e: out of descriptors (soft RLIMIT_NOFILE lowered below the connection cap)",
          flush=True)
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    low = open_fds(pid) + 4
    try:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (low, hard))
    except OSError as e:
        check(False, f"lowering the demo's descriptor limit with prlimit(2): {e}")
        return
    try:
        t0 = time.monotonic()
        flood = Flood(port, 40)
        # CPU while the descriptors are exhausted: from +0.1 s until just before the
        # accepted connections time out and give theirs back.
        time.sleep(0.1)
        cpu0 = cpu_seconds(pid)
        c0 = time.monotonic()
        time.sleep(0.2)
        tries = [request(port, "/healthy") for _ in range(3)]
        time.sleep(max(0.0, t0 + HEADER_TIMEOUT - 0.1 - time.monotonic()))
        wall = time.monotonic() - c0
        cpu = cpu_seconds(pid) - cpu0
        time.sleep(max(0.0, t0 + 2.0 - time.monotonic()))
        closed = flood.results()
        still = flood.still_open()
        flood.stop()
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    with_503 = [c for c in closed if c[1] > 0]
    print(f"      limit {low} descriptors: {len(with_503)} of 40 refused with 503, "
          f"{still} still open at +2s; /healthy {[t[:2] for t in tries]}")
    check(len(with_503) >= 30 and all(c[0] < PROMPT for c in with_503),
          f"out of descriptors, waiting connections are refused (503) at once "
          f"({len(with_503)} of 40, slowest "
          f"{max([c[0] for c in with_503], default=0) * 1000:.0f}ms)")
    check(still == 0 and len(closed) == 40,
          f"none is left waiting in the backlog: all 40 closed by +2 s ({len(closed)} closed, "
          f"{still} still open)")
    check(all(t[0] != "hung" and t[2] < PROMPT for t in tries),
          f"requests are refused promptly, not left waiting ({[t[:3] for t in tries]})")
    check(cpu / wall < CPU_LIMIT,
          f"the demo does not spin out of descriptors: CPU {100 * cpu / wall:.1f}% of one core "
          f"over {wall:.1f}s")
    # The accepted ones time out, and the service answers again.
    time.sleep(HEADER_TIMEOUT + 0.3)
    outcome, status, took = request(port, "/healthy")
    check(outcome == "answered" and status == 200,
          f"with descriptors back, /healthy is answered ({outcome} {status})")


def main():
    global port_g
    pid, port, metrics_port = (int(a) for a in sys.argv[1:4])
    port_g = port
    print(f"demo pid {pid}: {open_fds(pid)} descriptors open, limit "
          f"{resource.prlimit(pid, resource.RLIMIT_NOFILE)}", flush=True)
    outcome, status, _ = request(port, "/healthy")
    check(outcome == "answered" and status == 200, "the demo answers before the floods")
    phase_static_flood(pid, port, metrics_port)
    phase_slow_clients()
    phase_persistent_flood(pid, port, metrics_port)
    time.sleep(HEADER_TIMEOUT + 0.5)  # the last flood's accepted connections time out
    phase_out_of_descriptors(pid, port)
    time.sleep(HEADER_TIMEOUT + 0.5)  # everything this script opened is closed now
    if failures:
        print(f"limits_clients: {len(failures)} checks failed", flush=True)
        return 1
    print("limits_clients: all checks passed", flush=True)
    return 0


port_g = 0
if __name__ == "__main__":
    sys.exit(main())
