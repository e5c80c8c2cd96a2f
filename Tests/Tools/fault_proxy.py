#!/usr/bin/env python3
"""A seeded, bounded fault-injecting HTTP proxy for the remote-cache tests.

It relays one request per connection to the S3 server and, for GETs whose path contains
--match, draws a fault from --faults with a seeded random generator. Each object gets at most
--per-object faults, so a client that retries always gets through in the end.

Faults:
  reset     send the headers and part of the body, then reset the connection (RST)
  stall     send part of the body, then nothing for --stall seconds, then close
  truncate  send part of the body, then close cleanly (FIN)
The kinds are used in turn (a seeded draw decides which requests get one, and where bodies break).

  503       answer 503 SlowDown for this request and the next two (a burst) without forwarding
  flip      send the whole body with one byte inverted
  short     send a complete response whose Content-Length (and body) is shorter than the object
  replace   send half the body, print "STALLED <path>" on stdout, wait until --release-file
            exists, then reset (the test replaces the object meanwhile)

Uploads: --put-faults flip inverts one byte of the body of PUTs whose path contains --match (at
most --per-object times per object), before it reaches the server.
Persistent resets: --reset-every N cuts every GET body of a matching path after N bytes (RST), on
every request: a client only gets through by resuming where it was cut.
Ranges: --ignore-range answers a range request for an object whose whole response it has seen
(a GET it cut) with that whole response, 200: a server that ignores ranges.
TLS: --tls-cert/--tls-key serve HTTPS (a self-signed front) in front of the plain upstream.

Shaping (for Tools/bench/remote): --delay adds latency before every response, --bandwidth caps
the bytes per second sent to all clients together, --stats FILE keeps {"getBytes", "requests"}
(response bytes of successful GETs, and every request) up to date in FILE.

Prints "PORT <n>" once listening; a line per fault on stdout ("FAULT <kind> <path>").
"""
import json
import argparse, random, signal, socket, struct, sys, threading, time, os

# A parent may start us with signals blocked (threads of a test runner do): take SIGTERM back.
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])

parser = argparse.ArgumentParser()
parser.add_argument("--upstream", required=True)  # host:port
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--faults", default="reset,stall,truncate,503,flip")
parser.add_argument("--rate", type=float, default=0.5)
parser.add_argument("--per-object", type=int, default=2)
parser.add_argument("--match", default="data.mdb")
parser.add_argument("--stall", type=float, default=4.0)
parser.add_argument("--delay", type=float, default=0.0, help="seconds added before every response (latency)")
parser.add_argument("--release-file", default="")
parser.add_argument("--bandwidth", type=float, default=0.0, help="bytes per second to all clients together (0: no cap)")
parser.add_argument("--stats", default="", help="a JSON file kept up to date with the bytes served")
parser.add_argument("--put-faults", default="", help="flip: one byte of a matching PUT body inverted")
parser.add_argument("--reset-every", type=int, default=0, help="cut every matching GET body after this many bytes")
parser.add_argument("--ignore-range", action="store_true", help="forward GETs without their Range and If-Match headers (a server that ignores ranges)")
parser.add_argument("--tls-cert", default="")
parser.add_argument("--tls-key", default="")
args = parser.parse_args()

host, port = args.upstream.rsplit(":", 1)
rng = random.Random(args.seed)
lock = threading.Lock()
faults = args.faults.split(",") if args.faults else []
per_object = {}
burst = [0]
count = [0]
pace = [0.0]  # when the shared link is free again (monotonic seconds)
served = {"getBytes": 0, "requests": 0}
whole = {}  # --ignore-range: each object's first whole response, by path


def send(sock, data):
    """sendall, paced to --bandwidth shared by every connection."""
    if not args.bandwidth:
        sock.sendall(data)
        return
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        with lock:
            start = max(pace[0], time.monotonic())
            pace[0] = start + len(chunk) / args.bandwidth
        wait = start - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        sock.sendall(chunk)


def count_request(method, status, body_bytes):
    with lock:
        served["requests"] += 1
        if method == "GET" and status.startswith(b"2"):
            served["getBytes"] += body_bytes
        if args.stats:
            with open(args.stats + ".tmp", "w") as f:
                json.dump(served, f)
            os.replace(args.stats + ".tmp", args.stats)


def say(line):
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def read_head(sock, buf):
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def content_length(head):
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1].strip())
    return 0


def read_exact(sock, buf, n):
    while len(buf) < n:
        chunk = sock.recv(min(1 << 20, n - len(buf)) or 1)
        if not chunk:
            break
        buf += chunk
    return buf[:n], buf[n:]


def choose(method, path):
    with lock:
        if burst[0] > 0:
            burst[0] -= 1
            return "503"
        if method != "GET" or args.match not in path or not faults:
            return None
        if per_object.get(path, 0) >= args.per_object or rng.random() >= args.rate:
            return None
        per_object[path] = per_object.get(path, 0) + 1
        # The kinds in turn, so that any five faults cover them all.
        kind = faults[count[0] % len(faults)]
        count[0] += 1
        if kind == "503":
            burst[0] = 2
        return kind


def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def handle(client):
    try:
        head, rest = read_head(client, b"")
        if head is None:
            client.close()
            return
        if b"\r\nexpect: 100-continue" in head.lower():
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")  # the client sends its body at once
        body, _ = read_exact(client, rest, content_length(head))
        method, path = head.split(b" ", 2)[:2]
        method, path = method.decode(), path.decode()
        if method == "PUT" and "flip" in args.put_faults.split(",") and args.match in path and len(body) > 16:
            with lock:
                flip = per_object.get("PUT " + path, 0) < args.per_object
                if flip:
                    per_object["PUT " + path] = per_object.get("PUT " + path, 0) + 1
            if flip:
                b = bytearray(body); b[rng.randrange(0, len(b))] ^= 0xFF; body = bytes(b)
                say(f"FAULT putflip {path}")
        if args.ignore_range and method == "GET" and b"\r\nrange:" in head.lower() and path in whole:
            # Answer the range request as a server that ignores ranges would: 200 and the whole
            # object (kept from its first, cut, response; a range request is signed, so it cannot
            # be forwarded without its Range header).
            say(f"IGNORED-RANGE {path}")
            client.sendall(whole[path]); client.close()
            return
        kind = choose(method, path)
        if kind is None and args.reset_every and method == "GET" and args.match in path:
            kind = "resetevery"
        if args.delay:
            time.sleep(args.delay)
        if kind == "503":
            say(f"FAULT 503 {path}")
            xml = b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            client.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: "
                           + str(len(xml)).encode() + b"\r\nConnection: close\r\n\r\n" + xml)
            client.close()
            return
        up = socket.create_connection((host, int(port)))
        up.sendall(head + body)
        rhead, rrest = read_head(up, b"")
        # The body went with the request: an interim "100 Continue" is not the answer.
        while rhead is not None and rhead.split(b" ", 2)[1].startswith(b"1"):
            rhead, rrest = read_head(up, rrest)
        if rhead is None:
            client.close(); up.close()
            return
        n = content_length(rhead) if method != "HEAD" else 0
        rbody, _ = read_exact(up, rrest, n)
        up.close()
        status = rhead.split(b" ", 2)[1]
        if kind is None or not status.startswith(b"2") or len(rbody) < 16:
            send(client, rhead + rbody)
            client.close()
            count_request(method, status, len(rbody))
            return
        if kind == "resetevery":
            if len(rbody) <= args.reset_every:
                send(client, rhead + rbody); client.close()
                return
            say(f"FAULT resetevery {path}")
            client.sendall(rhead + rbody[:args.reset_every]); time.sleep(0.05); reset(client)
            return
        say(f"FAULT {kind} {path}")
        if args.ignore_range and status == b"200":
            with lock:
                whole[path] = rhead + rbody
        cut = rng.randrange(1, len(rbody) - 1)
        if kind == "flip":
            b = bytearray(rbody); b[cut] ^= 0xFF
            client.sendall(rhead + bytes(b)); client.close()
        elif kind == "short":
            # A whole, well-formed response of the wrong size: Content-Length says `cut`.
            lines = [l for l in rhead.split(b"\r\n") if not l.lower().startswith(b"content-length:")]
            head = b"\r\n".join(lines[:1] + [b"Content-Length: " + str(cut).encode()] + lines[1:])
            client.sendall(head + rbody[:cut]); client.close()
        elif kind == "reset":
            client.sendall(rhead + rbody[:cut]); time.sleep(0.05); reset(client)
        elif kind == "truncate":
            client.sendall(rhead + rbody[:cut]); client.shutdown(socket.SHUT_WR); client.close()
        elif kind == "stall":
            client.sendall(rhead + rbody[:cut]); time.sleep(args.stall); client.close()
        elif kind == "replace":
            client.sendall(rhead + rbody[: len(rbody) // 2])
            say(f"STALLED {path}")
            while args.release_file and not os.path.exists(args.release_file):
                time.sleep(0.05)
            reset(client)
    except OSError:
        try:
            client.close()
        except OSError:
            pass


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(64)
tls = None
if args.tls_cert:
    import ssl
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.tls_cert, args.tls_key)
say(f"PORT {server.getsockname()[1]}")


def serve(c):
    if tls is not None:
        try:
            c = tls.wrap_socket(c, server_side=True)
        except (OSError, ValueError):
            c.close()  # the client refused our certificate: that is what a test may check
            return
    handle(c)


while True:
    c, _ = server.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
