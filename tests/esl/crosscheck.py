#!/usr/bin/env python3
"""Cross-checks the FreeSWITCH simulator with an independent ESL client.

The client is FreeSWITCH's own libesl (PyPI FreeSWITCH-ESL-Python, `from freeswitchESL import
ESL`), which shares no code with pairscale-esl. It connects to one simulator node started with
`pairscale-fssim --initial-calls C --initial-bridged B` and checks that it sees what a real
FreeSWITCH in that state would answer: auth, status, counts, pause_check/ready_check, the
channel list, bgapi with its BACKGROUND_JOB event, HEARTBEAT, and hupall.

    crosscheck.py --addr 127.0.0.1:PORT --calls C --bridged B [--password ClueCon]
"""
import argparse
import json
import sys

from freeswitchESL import ESL

FAILURES = []


def check(name, got, want):
    ok = got == want
    print(f"{'ok  ' if ok else 'FAIL'} {name}: got {got!r}" + ("" if ok else f", want {want!r}"))
    if not ok:
        FAILURES.append(name)


def api(con, cmd):
    ev = con.api(cmd)
    if ev is None:
        FAILURES.append(f"api {cmd}: no reply")
        return ""
    return ev.getBody() or ""


def banner(status):
    lines = status.split("\n")
    return lines[1] if len(lines) > 1 else ""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--password", default="ClueCon")
    p.add_argument("--calls", type=int, required=True, help="unbridged calls the node holds")
    p.add_argument("--bridged", type=int, required=True, help="bridged calls the node holds")
    a = p.parse_args()
    host, port = a.addr.rsplit(":", 1)
    calls = a.calls + a.bridged
    channels = a.calls + 2 * a.bridged

    bad = ESL.ESLconnection(host, port, "not-the-password")
    check("wrong password refused", bool(bad.connected()), False)

    con = ESL.ESLconnection(host, port, a.password)
    check("right password accepted", bool(con.connected()), True)
    if not con.connected():
        return 1

    status = api(con, "status")
    check("status banner", banner(status).endswith(" is ready"), True)
    check("status sessions line", status.split("\n")[3].split(" ")[0], str(channels))
    check("show calls count", api(con, "show calls count"), f"\n{calls} total.\n")
    check("show channels count", api(con, "show channels count"), f"\n{channels} total.\n")
    rows = json.loads(api(con, "show channels as json") or "{}")
    check("show channels as json row_count", rows.get("row_count"), channels)
    check("channel rows", len(rows.get("rows", [])), channels)
    check("unknown api", api(con, "bogus_command"), "-ERR bogus_command Command not found!\n")

    check("pause_check before", api(con, "fsctl pause_check"), "false")
    check("fsctl pause inbound", api(con, "fsctl pause inbound"), "+OK\n")
    check("pause_check inbound", api(con, "fsctl pause_check inbound"), "true")
    check("pause_check outbound", api(con, "fsctl pause_check outbound"), "false")
    check("pause_check (both ways)", api(con, "fsctl pause_check"), "false")
    check("ready_check, inbound paused", api(con, "fsctl ready_check"), "true")
    check("status, inbound paused", banner(api(con, "status")).endswith(" is ready"), True)
    check("fsctl pause outbound", api(con, "fsctl pause outbound"), "+OK\n")
    check("pause_check, both paused", api(con, "fsctl pause_check"), "true")
    check("ready_check, both paused", api(con, "fsctl ready_check"), "false")
    check("status, both paused", banner(api(con, "status")).endswith(" is not ready"), True)
    check("fsctl resume", api(con, "fsctl resume"), "+OK\n")
    check("ready_check after resume", api(con, "fsctl ready_check"), "true")

    con.events("plain", "BACKGROUND_JOB HEARTBEAT")
    reply = con.bgapi("show calls count")
    job = reply.getHeader("Job-UUID") if reply else None
    check("bgapi gives a Job-UUID", bool(job) and len(job) == 36, True)
    got_job = got_heartbeat = False
    for _ in range(20):
        ev = con.recvEventTimed(1000)
        if ev is None:
            continue
        name = ev.getHeader("Event-Name")
        if name == "BACKGROUND_JOB" and ev.getHeader("Job-UUID") == job and not got_job:
            got_job = True
            check("BACKGROUND_JOB body", ev.getBody(), f"\n{calls} total.\n")
        elif name == "HEARTBEAT" and not got_heartbeat:
            got_heartbeat = True
            check("HEARTBEAT Session-Count", ev.getHeader("Session-Count"), str(channels))
            check("HEARTBEAT Event-Info", ev.getHeader("Event-Info"), "System Ready")
        if got_job and got_heartbeat:
            break
    check("saw BACKGROUND_JOB", got_job, True)
    check("saw HEARTBEAT", got_heartbeat, True)

    check(
        "hupall",
        api(con, "hupall NORMAL_CLEARING"),
        "+OK hangup all channels with cause NORMAL_CLEARING\n",
    )
    check("channels after hupall", api(con, "show channels count"), "\n0 total.\n")
    check("calls after hupall", api(con, "show calls count"), "\n0 total.\n")
    con.disconnect()

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: {', '.join(FAILURES)}")
        return 1
    print("all cross-checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
